package fs_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"shoal/chunkstore"
	"shoal/cluster"
	"shoal/fs"
)

// The benchmarks compare shoal (over cluster.Local, with the default 4 MiB
// blocks, on chunkstore.Memory and on chunkstore.Disk in a temporary
// directory) with go-fuse's loopback file system and with a plain
// temporary directory. The loopback runs with and without FUSE passthrough
// (with it, the kernel does the data I/O itself and the daemon sees no
// reads or writes). Memory's Put and Get copy every chunk into freshly
// allocated memory, whose page faults dominate its figures on some VMs.

const benchFileSize = 256 << 20

// target is a directory to benchmark in, and a way to get a cold view of
// it (a fresh mount, so that neither the kernel's page cache nor shoal's
// chunk cache holds the file).
type target struct {
	name  string
	setup func(b *testing.B) (dir string, remount func() string)
}

func targets() []target {
	return []target{
		{"shoal", func(b *testing.B) (string, func() string) {
			store := chunkstore.NewMemory()
			l := cluster.NewLocal(cluster.StateConfig{}, store)
			w := &world{local: l, meta: l, store: store}
			dir, unmount := w.mount(b, fs.Options{})
			return dir, func() string {
				unmount()
				dir, unmount = w.mount(b, fs.Options{})
				return dir
			}
		}},
		{"shoal-disk", func(b *testing.B) (string, func() string) {
			store, err := chunkstore.OpenDisk(b.TempDir(), chunkstore.DiskOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { store.Close() })
			l := cluster.NewLocal(cluster.StateConfig{}, store)
			w := &world{local: l, meta: l, store: store}
			dir, unmount := w.mount(b, fs.Options{})
			return dir, func() string {
				unmount()
				dir, unmount = w.mount(b, fs.Options{})
				return dir
			}
		}},
		{"loopback", func(b *testing.B) (string, func() string) { return loopback(b, true) }},
		{"loopback-nopassthrough", func(b *testing.B) (string, func() string) { return loopback(b, false) }},
		{"tmpdir", func(b *testing.B) (string, func() string) {
			d := b.TempDir()
			return d, func() string { return d }
		}},
	}
}

func loopback(b *testing.B, passthrough bool) (string, func() string) {
	orig := b.TempDir()
	mount := func() (string, func()) {
		mnt := b.TempDir()
		root, err := gofs.NewLoopbackRoot(orig)
		if err != nil {
			b.Fatal(err)
		}
		o := &gofs.Options{MountOptions: fuse.MountOptions{DirectMount: true, AllowOther: true,
			Options: []string{"default_permissions"}, MaxWrite: 1 << 20}}
		if !passthrough {
			o.DisabledCapabilities = fuse.CAP_PASSTHROUGH
		}
		srv, err := gofs.Mount(mnt, root, o)
		if err != nil {
			b.Fatal(err)
		}
		var done bool
		un := func() {
			if !done {
				done = true
				srv.Unmount()
			}
		}
		b.Cleanup(un)
		return mnt, un
	}
	dir, un := mount()
	return dir, func() string {
		un()
		dir, un = mount()
		return dir
	}
}

var writeSeq int

func writeBig(b *testing.B, p string) {
	writeSeq++
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	buf := randBytes(1, 1<<20)
	for off := 0; off < benchFileSize; off += len(buf) {
		// Make every block distinct, so that nothing dedups.
		buf[0], buf[1], buf[2], buf[3] = byte(off>>20), byte(off>>28), byte(writeSeq), byte(writeSeq>>8)
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSeqWrite writes a 256 MiB file in 1 MiB writes and closes it
// (for shoal: until it is committed).
func BenchmarkSeqWrite(b *testing.B) {
	for _, tg := range targets() {
		b.Run(tg.name, func(b *testing.B) {
			dir, _ := tg.setup(b)
			b.SetBytes(benchFileSize)
			for i := 0; b.Loop(); i++ {
				writeBig(b, filepath.Join(dir, fmt.Sprint("f", i%2)))
			}
		})
	}
}

// BenchmarkSeqReadCold reads a 256 MiB file in 1 MiB reads through a fresh
// mount.
func BenchmarkSeqReadCold(b *testing.B) {
	for _, tg := range targets() {
		b.Run(tg.name, func(b *testing.B) {
			dir, remount := tg.setup(b)
			writeBig(b, filepath.Join(dir, "f"))
			b.SetBytes(benchFileSize)
			buf := make([]byte, 1<<20)
			for b.Loop() {
				b.StopTimer()
				dir = remount()
				b.StartTimer()
				f, err := os.Open(filepath.Join(dir, "f"))
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
				f.Close()
				if err != nil || n != benchFileSize {
					b.Fatalf("read: got %d bytes, %v; want %d", n, err, benchFileSize)
				}
			}
		})
	}
}

// BenchmarkCreateSmall creates, writes (4 KiB) and closes files.
func BenchmarkCreateSmall(b *testing.B) {
	for _, tg := range targets() {
		b.Run(tg.name, func(b *testing.B) {
			dir, _ := tg.setup(b)
			data := randBytes(2, 4096)
			for i := 0; b.Loop(); i++ {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprint("s", i)), data, 0o644); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// nullStore keeps nothing: it isolates the file system's own write path
// (FUSE, buffering, hashing, commit) from any store.
type nullStore struct{}

func (nullStore) Put(ctx context.Context, id chunkstore.ID, data []byte) error { return nil }

func (nullStore) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	return nil, fmt.Errorf("null get %s: %w", id, chunkstore.ErrNotFound)
}

// BenchmarkSeqWriteNullStore is BenchmarkSeqWrite with a store that keeps
// nothing.
func BenchmarkSeqWriteNullStore(b *testing.B) {
	l := cluster.NewLocal(cluster.StateConfig{}, nil)
	w := &world{local: l, meta: l, store: nullStore{}}
	dir, _ := w.mount(b, fs.Options{})
	b.SetBytes(benchFileSize)
	for i := 0; b.Loop(); i++ {
		writeBig(b, filepath.Join(dir, fmt.Sprint("f", i%2)))
	}
}
