package fstest

import (
	"os"
	"slices"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// posixtestSkipped lists go-fuse posixtest tests that Run does not run,
// because they do not hold on an ordinary local file system.
var posixtestSkipped = map[string]string{
	// Expects an flock on one fd to make an fcntl lock on another fail with
	// EAGAIN, which is how FUSE emulates flock, not how Linux does it.
	"FcntlFlockLocksFile": "FUSE-specific flock/fcntl interaction",
	// Fails on ext4 as well.
	"OpenSymlinkRace": "fails on a local file system too",
}

// testPosixtest runs go-fuse's posixtest suite, each test in its own
// directory.
func testPosixtest(t *testing.T, dir string) {
	var names []string
	for name := range posixtest.All {
		if _, skip := posixtestSkipped[name]; !skip {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			d, err := os.MkdirTemp(dir, name)
			check(t, "mkdir", err)
			t.Cleanup(func() { os.RemoveAll(d) })
			posixtest.All[name](t, d)
		})
	}
}
