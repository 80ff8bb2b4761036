package fstest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// searchable makes every directory from dir up to / searchable by group and
// others, so that other users can reach dir, and restores the old modes when
// the test ends.
func searchable(t *testing.T, dir string) {
	t.Helper()
	abs, err := filepath.Abs(dir)
	check(t, "abs", err)
	for p := abs; ; p = filepath.Dir(p) {
		st := stat(t, p)
		if old := st.Mode & 0o7777; old&0o011 != 0o011 {
			check(t, "chmod "+p, syscall.Chmod(p, old|0o011))
			t.Cleanup(func() { syscall.Chmod(p, old) })
		}
		if p == "/" {
			return
		}
	}
}

// testPermOtherUser checks modes are enforced for non-root users.
func testPermOtherUser(t *testing.T, dir string) {
	searchable(t, dir)
	p := func(s string) string { return filepath.Join(dir, s) }
	// A 0600 file owned by A: A reads it, B cannot.
	writeFile(t, p("private"), "secret")
	check(t, "chown", os.Chown(p("private"), uidA, uidA))
	check(t, "chmod", os.Chmod(p("private"), 0o600))
	wantChild(t, "owner reads 0600 file", as(t, uidA, "read", p("private")), 0)
	wantChild(t, "other user reads 0600 file", as(t, uidB, "read", p("private")), syscall.EACCES)
	wantChild(t, "other user writes 0600 file", as(t, uidB, "write", p("private")), syscall.EACCES)
	wantChild(t, "other user chmods A's file", as(t, uidB, "chmod", p("private")), syscall.EPERM)
	// 0644: others read but do not write.
	check(t, "chmod", os.Chmod(p("private"), 0o644))
	wantChild(t, "other user reads 0644 file", as(t, uidB, "read", p("private")), 0)
	wantChild(t, "other user writes 0644 file", as(t, uidB, "write", p("private")), syscall.EACCES)
	wantContent(t, p("private"), "secret")
	// 0400 stops even the owner writing; root is not stopped.
	check(t, "chmod", os.Chmod(p("private"), 0o400))
	wantChild(t, "owner writes 0400 file", as(t, uidA, "write", p("private")), syscall.EACCES)
	wantChild(t, "root writes 0400 file", as(t, 0, "write", p("private")), 0)
	wantContent(t, p("private"), "secretx")
	// A 0755 dir owned by A: B cannot create or delete in it.
	d := p("adir")
	mkdir(t, d, 0o755)
	check(t, "chown", os.Chown(d, uidA, uidA))
	wantChild(t, "owner creates in 0755 dir", as(t, uidA, "create", filepath.Join(d, "byA")), 0)
	wantChild(t, "other user creates in 0755 dir", as(t, uidB, "create", filepath.Join(d, "byB")), syscall.EACCES)
	wantChild(t, "other user unlinks in 0755 dir", as(t, uidB, "unlink", filepath.Join(d, "byA")), syscall.EACCES)
	wantChild(t, "other user mkdirs in 0755 dir", as(t, uidB, "mkdir", filepath.Join(d, "dirB")), syscall.EACCES)
	if st := stat(t, filepath.Join(d, "byA")); st.Uid != uidA || st.Gid != uidA {
		t.Errorf("owner of A's new file: got %d:%d, want %d:%d", st.Uid, st.Gid, uidA, uidA)
	}
	// A 0700 dir cannot be searched by others.
	check(t, "chmod", os.Chmod(d, 0o700))
	wantChild(t, "other user reads through 0700 dir", as(t, uidB, "read", filepath.Join(d, "byA")), syscall.EACCES)
	// Group permission: B in group A's file group.
	check(t, "chmod", os.Chmod(d, 0o755))
	g := filepath.Join(d, "group")
	writeFile(t, g, "g")
	check(t, "chown", os.Chown(g, uidA, uidB))
	check(t, "chmod", os.Chmod(g, 0o460))
	wantChild(t, "group member writes g+w file", as(t, uidB, "write", g), 0)
	wantChild(t, "owner writes u=r file", as(t, uidA, "write", g), syscall.EACCES)
}

// testPermShell checks permissions with a shell as another user, as a user
// would see them.
func testPermShell(t *testing.T, dir string) {
	searchable(t, dir)
	for _, bin := range []string{"sh", "cat"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is needed: %v", bin, err)
		}
	}
	f := filepath.Join(dir, "f")
	writeFile(t, f, "root's\n")
	check(t, "chmod", os.Chmod(f, 0o600))
	sh := func(uid int, script string) error {
		cmd := exec.Command("sh", "-c", script, "sh", f)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
		out, err := cmd.CombinedOutput()
		t.Logf("uid %d: sh -c %q: %v %s", uid, script, err, out)
		return err
	}
	var exit *exec.ExitError
	if err := sh(uidA, `cat "$1"`); !errors.As(err, &exit) {
		t.Errorf("cat of root's 0600 file as uid %d: got %v, want a non-zero exit", uidA, err)
	}
	if err := sh(uidA, `echo x > "$1"`); !errors.As(err, &exit) {
		t.Errorf("write to root's 0600 file as uid %d: got %v, want a non-zero exit", uidA, err)
	}
	if err := sh(uidA, `echo x > new`); !errors.As(err, &exit) {
		t.Errorf("create in root's 0755 dir as uid %d: got %v, want a non-zero exit", uidA, err)
	}
	check(t, "chmod", os.Chmod(dir, 0o777))
	if err := sh(uidA, `echo hello > new && cat new`); err != nil {
		t.Errorf("create in 0777 dir as uid %d: got %v, want success", uidA, err)
	}
	wantContent(t, filepath.Join(dir, "new"), "hello\n")
	wantContent(t, f, "root's\n")
}

// testSticky checks a sticky, world-writable directory like /tmp.
func testSticky(t *testing.T, dir string) {
	searchable(t, dir)
	d := filepath.Join(dir, "tmp")
	mkdir(t, d, 0o1777)
	a, b := filepath.Join(d, "a"), filepath.Join(d, "b")
	wantChild(t, "A creates in sticky dir", as(t, uidA, "create", a), 0)
	wantChild(t, "B creates in sticky dir", as(t, uidB, "create", b), 0)
	wantChild(t, "B deletes A's file", as(t, uidB, "unlink", a), syscall.EPERM)
	if _, err := os.Stat(a); err != nil {
		t.Errorf("A's file after B's unlink: got %v, want it still there", err)
	}
	wantChild(t, "B deletes own file", as(t, uidB, "unlink", b), 0)
	wantChild(t, "A deletes own file", as(t, uidA, "unlink", a), 0)
	// Without the sticky bit B may delete A's file.
	check(t, "chmod", os.Chmod(d, 0o777))
	wantChild(t, "A creates in plain 0777 dir", as(t, uidA, "create", a), 0)
	wantChild(t, "B deletes A's file without sticky bit", as(t, uidB, "unlink", a), 0)
}

// testUmask checks the mode of new files and dirs is the requested mode
// minus the creating process's umask.
func testUmask(t *testing.T, dir string) {
	searchable(t, dir)
	check(t, "chmod", os.Chmod(dir, 0o777))
	for _, tc := range []struct {
		op    string
		mode  uint32
		umask int
	}{
		{"create", 0o666, 0o077},
		{"create", 0o666, 0o022},
		{"create", 0o666, 0o002},
		{"create", 0o666, 0o000},
		{"create", 0o640, 0o027},
		{"mkdir", 0o777, 0o077},
		{"mkdir", 0o777, 0o022},
		{"mkdir", 0o777, 0o000},
	} {
		p := filepath.Join(dir, tc.op+"-"+modeString(uint32(tc.umask))+"-"+modeString(tc.mode))
		e, _ := runChild(t, childOp{Uid: uidA, Gid: uidA, Umask: tc.umask, Op: tc.op, Path: p, Mode: tc.mode})
		if e != 0 {
			t.Errorf("%s %o with umask %03o: got %s, want success", tc.op, tc.mode, tc.umask, errnoName(e))
			continue
		}
		want := tc.mode &^ uint32(tc.umask)
		if got := stat(t, p).Mode & 0o7777; got != want {
			t.Errorf("%s %o with umask %03o: got mode %03o, want %03o", tc.op, tc.mode, tc.umask, got, want)
		}
	}
}

// modeString formats m in octal.
func modeString(m uint32) string {
	return string([]byte{'0' + byte(m>>6&7), '0' + byte(m>>3&7), '0' + byte(m&7)})
}

// testSetuidWrite checks a non-root write clears setuid and setgid, and a
// root write does not.
func testSetuidWrite(t *testing.T, dir string) {
	searchable(t, dir)
	p := filepath.Join(dir, "suid")
	writeFile(t, p, "")
	check(t, "chmod", syscall.Chmod(p, 0o6777))
	wantChild(t, "root writes setuid file", as(t, 0, "write", p), 0)
	if got := stat(t, p).Mode & 0o7777; got != 0o6777 {
		t.Errorf("mode after root's write: got %o, want 6777 (root keeps the bits)", got)
	}
	wantChild(t, "other user writes setuid file", as(t, uidA, "write", p), 0)
	if got := stat(t, p).Mode & 0o7777; got != 0o777 {
		t.Errorf("mode after non-root write: got %o, want 777 (setuid and setgid cleared)", got)
	}
	wantContent(t, p, "xx")
	// setgid without group execute is kept when the writer is in the
	// file's group (it is not a setgid program); setuid is still cleared.
	check(t, "chown", os.Chown(p, uidB, uidA))
	check(t, "chmod", syscall.Chmod(p, 0o6766))
	wantChild(t, "other user writes setuid file", as(t, uidA, "write", p), 0)
	if got := stat(t, p).Mode & 0o7777; got != 0o2766 {
		t.Errorf("mode after non-root write to 6766: got %o, want 2766", got)
	}
}

// testSetuidChown checks chown clears setuid and setgid, even for root.
func testSetuidChown(t *testing.T, dir string) {
	p := filepath.Join(dir, "suid")
	writeFile(t, p, "")
	check(t, "chmod", syscall.Chmod(p, 0o6755))
	check(t, "chown", os.Chown(p, uidA, uidA))
	if got := stat(t, p).Mode & 0o7777; got != 0o755 {
		t.Errorf("mode after chown: got %o, want 755 (setuid and setgid cleared)", got)
	}
	// Directories keep setgid across chown.
	d := filepath.Join(dir, "d")
	mkdir(t, d, 0o2775)
	check(t, "chown dir", os.Chown(d, uidA, uidA))
	if got := stat(t, d).Mode & 0o7777; got != 0o2775 {
		t.Errorf("dir mode after chown: got %o, want 2775", got)
	}
}

// testSetgidDir checks files and dirs created in a setgid directory take its
// group, and subdirectories inherit the setgid bit.
func testSetgidDir(t *testing.T, dir string) {
	d := filepath.Join(dir, "d")
	mkdir(t, d, 0o2775)
	check(t, "chown dir", os.Chown(d, uidA, uidA))
	writeFile(t, filepath.Join(d, "f"), "")
	if st := stat(t, filepath.Join(d, "f")); st.Gid != uidA {
		t.Errorf("group of file in setgid dir: got %d, want %d", st.Gid, uidA)
	}
	check(t, "mkdir", os.Mkdir(filepath.Join(d, "sub"), 0o755))
	if st := stat(t, filepath.Join(d, "sub")); st.Gid != uidA || st.Mode&syscall.S_ISGID == 0 {
		t.Errorf("subdir of setgid dir: got gid %d mode %o, want gid %d with setgid", st.Gid, st.Mode, uidA)
	}
}
