package fs_test

import (
	"testing"

	"shoal/fs/fstest"
)

// TestPOSIX runs the POSIX conformance suite against a mount.
func TestPOSIX(t *testing.T) {
	dir, _ := mountNew(t)
	fstest.Run(t, dir)
}
