package fstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RunPrograms runs real programs on dir: cp -a of the Go source tree then
// diff -r, git init/add/commit of that tree, go build of a small generated
// module and running the binary, and tar c | tar x then diff -r. Each works in
// its own new subdirectory of dir. It is skipped under testing.Short, never
// otherwise: a missing program (cp, diff, git, tar, go) fails the test.
func RunPrograms(t *testing.T, dir string) {
	if testing.Short() {
		t.Skip("RunPrograms copies and builds whole trees; skipped in -short mode")
	}
	for _, bin := range []string{"cp", "diff", "git", "tar", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("RunPrograms needs %s: %v", bin, err)
		}
	}
	goroot := strings.TrimSpace(string(runCmd(t, "", nil, "go", "env", "GOROOT")))
	src := filepath.Join(goroot, "src")
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("Go source tree: %v", err)
	}
	// The copy is shared by the later subtests, so it lives as long as t.
	copyDir := progDir(t, dir, "copy")
	var tree string
	t.Run("CopyDiff", func(t *testing.T) {
		runCmd(t, copyDir, nil, "cp", "-a", src, filepath.Join(copyDir, "src"))
		runCmd(t, copyDir, nil, "diff", "-r", "--no-dereference", src, filepath.Join(copyDir, "src"))
		tree = filepath.Join(copyDir, "src")
	})
	t.Run("Git", func(t *testing.T) {
		if tree == "" {
			t.Fatal("no tree: CopyDiff failed")
		}
		env := []string{
			"GIT_AUTHOR_NAME=fstest", "GIT_AUTHOR_EMAIL=fstest@example.invalid",
			"GIT_COMMITTER_NAME=fstest", "GIT_COMMITTER_EMAIL=fstest@example.invalid",
			"GIT_CONFIG_NOSYSTEM=1", "HOME=" + t.TempDir(),
		}
		git := func(args ...string) []byte {
			return runCmd(t, tree, env, "git", append([]string{"-c", "safe.directory=*", "-c", "init.defaultBranch=main"}, args...)...)
		}
		git("init", "-q")
		git("add", "-A")
		git("commit", "-q", "-m", "the Go tree")
		git("fsck", "--no-progress")
		if out := git("status", "--porcelain"); len(out) != 0 {
			t.Errorf("git status after commit: got %q, want clean", abbrev(out))
		}
		n := strings.Count(string(git("ls-files")), "\n")
		if n < 1000 {
			t.Errorf("git ls-files: got %d files, want the whole tree (> 1000)", n)
		}
	})
	t.Run("GoBuild", func(t *testing.T) {
		d := progDir(t, dir, "gobuild")
		files := map[string]string{
			"go.mod":         "module example.com/hello\n\ngo 1.21\n",
			"main.go":        "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/hello/greet\"\n)\n\nfunc main() { fmt.Println(greet.Hello(\"shoal\")) }\n",
			"greet/greet.go": "// Package greet greets.\npackage greet\n\n// Hello returns a greeting for name.\nfunc Hello(name string) string { return \"hello, \" + name }\n",
		}
		for name, body := range files {
			p := filepath.Join(d, name)
			check(t, "mkdir", os.MkdirAll(filepath.Dir(p), 0o755))
			writeFile(t, p, body)
		}
		env := []string{"GOCACHE=" + filepath.Join(d, ".gocache"), "GOFLAGS=", "GOWORK=off", "CGO_ENABLED=0", "GOTOOLCHAIN=local"}
		runCmd(t, d, env, "go", "build", "-o", "hello", ".")
		out := runCmd(t, d, nil, filepath.Join(d, "hello"))
		if got := strings.TrimSpace(string(out)); got != "hello, shoal" {
			t.Errorf("built program printed %q, want %q", got, "hello, shoal")
		}
	})
	t.Run("Tar", func(t *testing.T) {
		if tree == "" {
			t.Fatal("no tree: CopyDiff failed")
		}
		d := progDir(t, dir, "tar")
		archive := filepath.Join(d, "tree.tar")
		runCmd(t, filepath.Dir(tree), nil, "tar", "-c", "-f", archive, "--exclude=.git", filepath.Base(tree))
		out := filepath.Join(d, "out")
		check(t, "mkdir", os.Mkdir(out, 0o755))
		runCmd(t, out, nil, "tar", "-x", "-p", "-f", archive)
		runCmd(t, d, nil, "diff", "-r", "--no-dereference", "-x", ".git", src, filepath.Join(out, filepath.Base(tree)))
	})
}

// progDir creates a fresh directory dir/name for a program subtest and
// removes it when the parent test ends.
func progDir(t *testing.T, dir, name string) string {
	t.Helper()
	d := filepath.Join(dir, "programs-"+name)
	check(t, "clear", os.RemoveAll(d))
	check(t, "mkdir", os.Mkdir(d, 0o755))
	t.Cleanup(func() {
		if err := os.RemoveAll(d); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return d
}

// runCmd runs name with args in dir with env added to the environment and
// returns its standard output; it fails the test if the command fails.
func runCmd(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, abbrev(out), stderr.String())
	}
	return out
}
