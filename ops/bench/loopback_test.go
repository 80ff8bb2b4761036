package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// mountLoopback builds the loopback, mounts orig on a new directory and
// unmounts it at cleanup, failing the test if the mount outlives it.
func mountLoopback(t *testing.T, orig string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "loopback")
	if err := BuildLoopback(ctx, bin); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	unmount, err := MountLoopback(ctx, bin, orig, mnt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		if mounted(mnt) {
			t.Errorf("after unmount: got %s still mounted, want not", mnt)
		}
	})
	return mnt
}

func TestLoopback(t *testing.T) {
	orig := t.TempDir()
	mnt := mountLoopback(t, orig)
	if !mounted(mnt) {
		t.Fatalf("got %s not mounted, want mounted", mnt)
	}
	want := bytes.Repeat([]byte("shoal loopback "), 10000)
	if err := os.WriteFile(filepath.Join(mnt, "f"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(orig, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("underlying file: got %d bytes, want %d equal bytes", len(got), len(want))
	}
}

func TestMountLoopbackErrors(t *testing.T) {
	tests := []struct {
		name, bin, orig, mnt string
	}{
		{"missing binary", filepath.Join(t.TempDir(), "nope"), t.TempDir(), t.TempDir()},
		{"missing mount dir", "/bin/true", t.TempDir(), filepath.Join(t.TempDir(), "nope")},
		{"server exits", "/bin/false", t.TempDir(), t.TempDir()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unmount, err := MountLoopback(context.Background(), tt.bin, tt.orig, tt.mnt)
			if err == nil {
				unmount()
				t.Fatal("got nil error, want one")
			}
		})
	}
}

func TestUnescapeMount(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/plain", "/plain"},
		{`/a\040b`, "/a b"},
		{`/t\011ab\134`, "/t\tab\\"},
		{`/short\04`, `/short\04`},
	}
	for _, tt := range tests {
		if got := unescapeMount(tt.in); got != tt.want {
			t.Errorf("unescapeMount(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
