package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps the package map of DESIGN.md true: which of our
// top-level packages each may import (directly or not).
func TestImportDirection(t *testing.T) {
	allowed := map[string][]string{
		"wire":       nil,
		"chunkstore": nil,
		"cluster":    {"wire", "chunkstore"},
		"fs":         {"cluster", "chunkstore"},
		"ops":        {"cluster", "chunkstore", "wire"},
	}
	for top, may := range allowed {
		out, err := exec.Command("go", "list", "-test", "-f", `{{.ImportPath}}: {{join .Imports " "}}`, "shoal/"+top+"/...").CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", top, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) < 2 {
			t.Fatalf("go list %s listed %d packages, want at least the package and its test", top, len(lines))
		}
		for _, line := range lines {
			pkg, imports, _ := strings.Cut(line, ": ")
			testOnly := strings.HasSuffix(pkg, ".test") || strings.Contains(pkg, " [")
			for _, imp := range strings.Fields(imports) {
				rest, ours := strings.CutPrefix(imp, "shoal/")
				if !ours {
					continue
				}
				dep, _, _ := strings.Cut(rest, "/")
				if dep == top || contains(may, dep) {
					continue
				}
				if testOnly && dep == "wire" && top == "fs" {
					t.Errorf("%s imports %s: fs must not import wire, even in tests", pkg, imp)
					continue
				}
				if !testOnly {
					t.Errorf("%s imports %s: %s may import only %v", pkg, imp, top, may)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
