package chunkstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"shoal/chunkstore"
	"shoal/chunkstore/storetest"
)

func openDisk(t *testing.T, dir string, opts chunkstore.DiskOptions) *chunkstore.Disk {
	t.Helper()
	d, err := chunkstore.OpenDisk(dir, opts)
	if err != nil {
		t.Fatalf("OpenDisk(%s): %v", dir, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDiskConformance(t *testing.T) {
	for name, opts := range map[string]chunkstore.DiskOptions{
		"plain":    {},
		"zstd":     {Compress: true},
		"verified": {VerifiedPuts: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) chunkstore.Store {
				return openDisk(t, t.TempDir(), opts)
			})
		})
	}
	// With Buffers, and every buffer Get returns put back at once (the
	// store hands out a copy), each Get reads into memory an earlier one
	// used.
	for name, opts := range map[string]chunkstore.DiskOptions{
		"recycled":      {VerifiedPuts: true},
		"recycled zstd": {VerifiedPuts: true, Compress: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) chunkstore.Store {
				opts.Buffers = chunkstore.NewBuffers(64 << 20)
				return recycling{openDisk(t, t.TempDir(), opts), opts.Buffers}
			})
		})
	}
}

// recycling is a Disk whose Get returns a copy and puts the buffer it
// read into back into the Disk's Buffers.
type recycling struct {
	*chunkstore.Disk
	bufs *chunkstore.Buffers
}

func (r recycling) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	b, err := r.Disk.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(b)
	for i := range b {
		b[i] = 0xaa // what a later Get reads into starts out wrong
	}
	r.bufs.Put(b)
	return out, nil
}

// tempFiles returns the temporary files left under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var tmps []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), ".tmp-") {
			tmps = append(tmps, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return tmps
}

func TestDiskCorruption(t *testing.T) {
	ctx := context.Background()
	random, _ := storetest.Chunk(1, 64<<10)
	// A large chunk is read with O_DIRECT (Disk.readDirect), a small one
	// through the page cache.
	large, _ := storetest.Chunk(2, 1<<20+5)
	text := bytes.Repeat([]byte("all work and no play "), 5000)
	// Half random, half zeros: stored compressed, and still large.
	halfRandom := append(append([]byte(nil), large[:512<<10]...), make([]byte, 512<<10)...)
	tests := []struct {
		name     string
		compress bool
		data     []byte
		damage   func(b []byte) []byte
	}{
		{"magic", false, random, func(b []byte) []byte { b[0] ^= 1; return b }},
		{"version", false, random, func(b []byte) []byte { b[4] = 2; return b }},
		{"flags", false, random, func(b []byte) []byte { b[5] ^= 1; return b }},
		{"plain length", false, random, func(b []byte) []byte { b[9] ^= 1; return b }},
		{"payload crc", false, random, func(b []byte) []byte { b[25] ^= 1; return b }},
		{"header crc", false, random, func(b []byte) []byte { b[31] ^= 1; return b }},
		{"first payload byte", false, random, func(b []byte) []byte { b[32] ^= 1; return b }},
		{"last payload byte", false, random, func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }},
		{"zstd payload byte", true, text, func(b []byte) []byte { b[len(b)/2] ^= 4; return b }},
		{"truncated to nothing", false, random, func(b []byte) []byte { return b[:0] }},
		{"truncated in header", false, random, func(b []byte) []byte { return b[:20] }},
		{"header only", false, random, func(b []byte) []byte { return b[:32] }},
		{"one byte short", false, random, func(b []byte) []byte { return b[:len(b)-1] }},
		{"one byte long", false, random, func(b []byte) []byte { return append(b, 0) }},
		{"zstd truncated", true, text, func(b []byte) []byte { return b[:len(b)-3] }},
		{"large: header crc", false, large, func(b []byte) []byte { b[31] ^= 1; return b }},
		{"large: first payload byte", false, large, func(b []byte) []byte { b[32] ^= 1; return b }},
		{"large: payload byte in the last block", false, large, func(b []byte) []byte { b[len(b)-2] ^= 0x10; return b }},
		{"large: one byte short", false, large, func(b []byte) []byte { return b[:len(b)-1] }},
		{"large: one byte long", false, large, func(b []byte) []byte { return append(b, 0) }},
		{"large: cut to a whole block", false, large, func(b []byte) []byte { return b[:len(b)/4096*4096] }},
		{"large: zstd payload byte", true, halfRandom, func(b []byte) []byte { b[len(b)/2] ^= 4; return b }},
	}
	// With VerifiedPuts, Get skips the SHA-256 and the CRC-32C alone must
	// catch every kind of damage.
	for _, verified := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/verified=%v", tt.name, verified), func(t *testing.T) {
				t.Parallel()
				d := openDisk(t, t.TempDir(), chunkstore.DiskOptions{Compress: tt.compress, VerifiedPuts: verified})
				id := chunkstore.Sum(tt.data)
				if err := d.Put(ctx, id, tt.data); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(d.Path(id))
				if err != nil {
					t.Fatal(err)
				}
				if stored := len(b) < len(tt.data); stored != tt.compress {
					t.Fatalf("stored %d bytes for %d: got compressed=%v, want %v", len(b), len(tt.data), stored, tt.compress)
				}
				if err := os.WriteFile(d.Path(id), tt.damage(b), 0o644); err != nil {
					t.Fatal(err)
				}
				got, err := d.Get(ctx, id)
				if !errors.Is(err, chunkstore.ErrCorrupt) {
					t.Fatalf("Get of damaged chunk: got error %v, want ErrCorrupt", err)
				}
				if got != nil {
					t.Fatalf("Get of damaged chunk: got %d bytes, want none", len(got))
				}
				// The damaged file is set aside; a new Put repairs the chunk.
				if has, _ := d.Has(ctx, id); has {
					t.Fatalf("Has after corrupt Get: got true, want false")
				}
				if err := d.Put(ctx, id, tt.data); err != nil {
					t.Fatal(err)
				}
				if got, err := d.Get(ctx, id); err != nil || !bytes.Equal(got, tt.data) {
					t.Fatalf("Get after repair: got %d bytes, %v; want %d bytes", len(got), err, len(tt.data))
				}
			})
		}
	}
}

func TestDiskReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := openDisk(t, dir, chunkstore.DiskOptions{Compress: true})
	var ids []chunkstore.ID
	var datas [][]byte
	for i := range 10 {
		data, id := storetest.Chunk(uint64(i), 1000*i)
		if i%2 == 0 {
			data = bytes.Repeat([]byte{byte(i)}, 100000)
			id = chunkstore.Sum(data)
		}
		if err := d.Put(ctx, id, data); err != nil {
			t.Fatal(err)
		}
		ids, datas = append(ids, id), append(datas, data)
	}
	u1, err := d.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chunkstore.OpenDisk(dir, chunkstore.DiskOptions{}); err == nil {
		t.Fatalf("second OpenDisk of an open store: got no error, want one")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// A Put cut short leaves a temporary file; reopening removes it.
	stale := filepath.Join(filepath.Dir(d.Path(ids[0])), ".tmp-12345")
	if err := os.WriteFile(stale, []byte("half a chunk"), 0o644); err != nil {
		t.Fatal(err)
	}
	d2 := openDisk(t, dir, chunkstore.DiskOptions{})
	if tmps := tempFiles(t, dir); len(tmps) != 0 {
		t.Errorf("after reopen: got temp files %v, want none", tmps)
	}
	for i, id := range ids {
		got, err := d2.Get(ctx, id)
		if err != nil || !bytes.Equal(got, datas[i]) {
			t.Errorf("Get(%s) after reopen: got %d bytes, %v; want %d bytes", id, len(got), err, len(datas[i]))
		}
	}
	u2, err := d2.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u2.Chunks != u1.Chunks || u2.Bytes != u1.Bytes {
		t.Errorf("Stat after reopen: got %d chunks, %d bytes; want %d, %d", u2.Chunks, u2.Bytes, u1.Chunks, u1.Bytes)
	}
}

func TestOpenDiskForeignDir(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"other files", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "thesis.tex"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"wrong marker", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "SHOAL-CHUNKSTORE"), []byte("shoal chunkstore\nformat 9\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			d, err := chunkstore.OpenDisk(dir, chunkstore.DiskOptions{})
			if !errors.Is(err, chunkstore.ErrNotStore) {
				if d != nil {
					d.Close()
				}
				t.Fatalf("OpenDisk: got error %v, want ErrNotStore", err)
			}
		})
	}
}

func TestOpenDiskCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	d := openDisk(t, dir, chunkstore.DiskOptions{})
	data, id := storetest.Chunk(1, 10)
	if err := d.Put(context.Background(), id, data); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "chunks", id.String()[:2], id.String()); d.Path(id) != want {
		t.Errorf("Path: got %s, want %s", d.Path(id), want)
	}
	if _, err := os.Stat(d.Path(id)); err != nil {
		t.Errorf("chunk file: %v", err)
	}
}

func TestDiskPutExistingKeepsFile(t *testing.T) {
	ctx := context.Background()
	d := openDisk(t, t.TempDir(), chunkstore.DiskOptions{})
	data, id := storetest.Chunk(1, 1000)
	if err := d.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(d.Path(id), old, old); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(d.Path(id))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(d.Path(id))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Errorf("Put of an existing chunk rewrote its file")
	}
	if !after.ModTime().After(old.Add(time.Minute)) {
		t.Errorf("Put of an existing chunk: got mtime %v, want about now", after.ModTime())
	}
}

func TestDiskReserve(t *testing.T) {
	ctx := context.Background()
	d := openDisk(t, t.TempDir(), chunkstore.DiskOptions{ReserveBytes: 1 << 62})
	data, id := storetest.Chunk(1, 1000)
	err := d.Put(ctx, id, data)
	if !errors.Is(err, chunkstore.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put under reserve: got error %v, want ErrNoSpace", err)
	}
	if has, _ := d.Has(ctx, id); has {
		t.Errorf("Has after refused Put: got true, want false")
	}
	u, err := d.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.Available != 0 {
		t.Errorf("Stat with huge reserve: got Available %d, want 0", u.Available)
	}
}

// mountTmpfs mounts a tmpfs of the given size (like "2m") on a fresh
// directory and unmounts it at cleanup.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount tmpfs on %s (the test needs root): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestDiskFull fills a small file system with chunks written through the
// page cache (100 KiB) and with O_DIRECT (1 MiB; see writeDirect).
func TestDiskFull(t *testing.T) {
	for _, size := range []int{100 << 10, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { testDiskFull(t, size) })
	}
}

func testDiskFull(t *testing.T, size int) {
	ctx := context.Background()
	dir := mountTmpfs(t, "3m")
	d := openDisk(t, filepath.Join(dir, "store"), chunkstore.DiskOptions{})
	var stored [][]byte
	var full error
	for i := range 100 {
		data, id := storetest.Chunk(uint64(i), size)
		if err := d.Put(ctx, id, data); err != nil {
			full = err
			break
		}
		stored = append(stored, data)
	}
	if full == nil {
		t.Fatalf("100 Puts of %d bytes into a 3 MiB tmpfs: got no error, want ErrNoSpace", size)
	}
	if !errors.Is(full, chunkstore.ErrNoSpace) || !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("Put on a full disk: got error %v, want ErrNoSpace and ENOSPC", full)
	}
	if len(stored) == 0 {
		t.Fatalf("no Put succeeded before the disk filled")
	}
	t.Logf("disk full after %d chunks: %v", len(stored), full)
	for _, data := range stored {
		id := chunkstore.Sum(data)
		got, err := d.Get(ctx, id)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("Get(%s) after disk full: got %d bytes, %v; want %d bytes", id, len(got), err, len(data))
		}
	}
	if tmps := tempFiles(t, dir); len(tmps) != 0 {
		t.Errorf("after disk full: got temp files %v, want none", tmps)
	}
	u, err := d.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.Chunks != int64(len(stored)) {
		t.Errorf("Stat after disk full: got %d chunks, want %d", u.Chunks, len(stored))
	}
	// Freeing space makes room again.
	if ok, err := d.Delete(ctx, chunkstore.Sum(stored[0]), time.Now().Add(time.Minute)); !ok || err != nil {
		t.Fatalf("Delete: got %v, %v; want true, nil", ok, err)
	}
	data, id := storetest.Chunk(1000, 10<<10)
	if err := d.Put(ctx, id, data); err != nil {
		t.Errorf("Put after freeing space: %v", err)
	}
}

func TestDiskWrongID(t *testing.T) {
	ctx := context.Background()
	d := openDisk(t, t.TempDir(), chunkstore.DiskOptions{})
	id := chunkstore.Sum([]byte("what the caller meant"))
	if err := d.Put(ctx, id, []byte("what the caller sent")); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Get(ctx, id); !errors.Is(err, chunkstore.ErrCorrupt) || got != nil {
		t.Fatalf("Get of chunk put under a wrong id: got %q, %v; want nil, ErrCorrupt", got, err)
	}
}

func TestDiskClosed(t *testing.T) {
	ctx := context.Background()
	d := openDisk(t, t.TempDir(), chunkstore.DiskOptions{})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	data, id := storetest.Chunk(1, 10)
	if err := d.Put(ctx, id, data); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("Put after Close: got error %v, want fs.ErrClosed", err)
	}
	if _, err := d.Delete(ctx, id, time.Now()); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("Delete after Close: got error %v, want fs.ErrClosed", err)
	}
}

// TestDiskLazyPutSurvivesReopen checks that chunks stored by PutLazy and
// made durable by Sync (with syncfs, or file by file where syncfs is
// missing or denied) are found by a store reopened on the same directory.
func TestDiskLazyPutSurvivesReopen(t *testing.T) {
	syncs := map[string]func(*chunkstore.Disk, context.Context) error{
		"syncfs":    (*chunkstore.Disk).Sync,
		"each file": (*chunkstore.Disk).SyncEachForTest,
	}
	for name, sync := range syncs {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			d, err := chunkstore.OpenDisk(dir, chunkstore.DiskOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			data, id := storetest.Chunk(80, 5000)
			if err := d.PutLazy(ctx, id, data); err != nil {
				t.Fatalf("PutLazy: %v", err)
			}
			if err := sync(d, ctx); err != nil {
				t.Fatalf("sync: %v", err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			d = openDisk(t, dir, chunkstore.DiskOptions{})
			got, err := d.Get(ctx, id)
			if err != nil {
				t.Fatalf("Get after reopen: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("Get after reopen: got %d bytes, want the %d put", len(got), len(data))
			}
		})
	}
}

// checkCounts checks that d's Stat counts the chunk files under its
// directory, and that no temporary files are left.
func checkCounts(t *testing.T, d *chunkstore.Disk) {
	t.Helper()
	var chunks, bytes int64
	err := filepath.WalkDir(filepath.Join(d.Dir(), "chunks"), func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if _, err := chunkstore.ParseID(e.Name()); err != nil {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		chunks, bytes = chunks+1, bytes+info.Size()
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", d.Dir(), err)
	}
	u, err := d.Stat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if u.Chunks != chunks || u.Bytes != bytes {
		t.Errorf("Stat: got %d chunks, %d bytes; the directory holds %d, %d", u.Chunks, u.Bytes, chunks, bytes)
	}
	if tmps := tempFiles(t, d.Dir()); len(tmps) != 0 {
		t.Errorf("got temp files %v, want none", tmps)
	}
}

// TestDiskConcurrentPuts runs many durable Puts at once, of distinct chunks
// and of one chunk, and checks that each is stored once, whole, and counted,
// and survives reopening the store.
func TestDiskConcurrentPuts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := chunkstore.OpenDisk(dir, chunkstore.DiskOptions{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const distinct, same = 48, 16
	datas := make([][]byte, distinct+1)
	for i := range distinct {
		datas[i], _ = storetest.Chunk(uint64(200+i), 1+i*4093)
		if i%3 == 0 { // some compress
			datas[i] = bytes.Repeat([]byte{byte(i)}, 10000+i)
		}
	}
	datas[distinct], _ = storetest.Chunk(300, 100<<10)
	errs := make(chan error, distinct+same)
	var wg sync.WaitGroup
	for i := range distinct + same {
		data := datas[min(i, distinct)]
		wg.Go(func() {
			if err := d.Put(ctx, chunkstore.Sum(data), data); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Put: %v", err)
	}
	checkCounts(t, d)
	if u, _ := d.Stat(ctx); u.Chunks != distinct+1 {
		t.Errorf("Stat: got %d chunks, want %d", u.Chunks, distinct+1)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := openDisk(t, dir, chunkstore.DiskOptions{})
	checkCounts(t, d2)
	for _, data := range datas {
		id := chunkstore.Sum(data)
		if got, err := d2.Get(ctx, id); err != nil || !bytes.Equal(got, data) {
			t.Errorf("Get(%s) after reopen: got %d bytes, %v; want %d bytes", id, len(got), err, len(data))
		}
	}
}

// TestDiskPutRacesDelete races durable Puts, Touches and Deletes of a few
// chunks and checks that the store's counts stay true and that a chunk
// whose Put returned after the last Delete is there.
func TestDiskPutRacesDelete(t *testing.T) {
	ctx := context.Background()
	d := openDisk(t, t.TempDir(), chunkstore.DiskOptions{})
	var datas [][]byte
	for i := range 4 {
		data, _ := storetest.Chunk(uint64(400+i), 20<<10)
		datas = append(datas, data)
	}
	cut := time.Now().Add(time.Hour)
	errs := make(chan error, 1000)
	var wg sync.WaitGroup
	for g := range 12 {
		wg.Go(func() {
			for i := range 20 {
				data := datas[(g+i)%len(datas)]
				id := chunkstore.Sum(data)
				var err error
				switch g % 3 {
				case 0:
					err = d.Put(ctx, id, data)
				case 1:
					_, err = d.Delete(ctx, id, cut)
				case 2:
					_, err = d.Touch(ctx, id)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Put/Touch/Delete race: %v", err)
	}
	checkCounts(t, d)
	for _, data := range datas {
		id := chunkstore.Sum(data)
		if err := d.Put(ctx, id, data); err != nil {
			t.Fatal(err)
		}
		if got, err := d.Get(ctx, id); err != nil || !bytes.Equal(got, data) {
			t.Errorf("Get(%s) after the race: got %d bytes, %v; want %d bytes", id, len(got), err, len(data))
		}
	}
	checkCounts(t, d)
}

// TestDiskDurablePutBypassesPageCache checks that a large chunk's durable
// Put writes around the page cache (O_DIRECT): none of the chunk file's
// pages stay cached after it, while a buffered write would leave them all.
// TestDiskLargeChunksBypassPageCache checks that a large chunk's file is
// written (by a durable Put) and read (by Get) around the page cache.
func TestDiskLargeChunksBypassPageCache(t *testing.T) {
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		t.Skip("tmpfs: file pages are the data")
	}
	d := openDisk(t, dir, chunkstore.DiskOptions{VerifiedPuts: true, Buffers: chunkstore.NewBuffers(16 << 20)})
	data, id := storetest.Chunk(7, 1<<20+5)
	if err := d.Put(context.Background(), id, data); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(d.Path(id))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(d.Path(id))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, int(info.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	cachedPages := func() int {
		vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			t.Fatal(errno)
		}
		cached := 0
		for _, v := range vec {
			cached += int(v & 1)
		}
		return cached
	}
	if cached := cachedPages(); cached > 0 {
		t.Errorf("%d of the chunk file's pages are in the page cache after a durable Put", cached)
	}
	got, err := d.Get(context.Background(), id)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after the direct write: %v, equal %v", err, bytes.Equal(got, data))
	}
	if cached := cachedPages(); cached > 0 {
		t.Errorf("%d of the chunk file's pages are in the page cache after Get", cached)
	}
	if info.Size() != int64(len(data))+32 {
		t.Errorf("chunk file has %d bytes, want %d (header and data, no padding)", info.Size(), len(data)+32)
	}
}
