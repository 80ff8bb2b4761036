package chunkstore_test

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"shoal/chunkstore"
)

// vmFlags returns the VmFlags of the mapping of this process that holds
// addr, from /proc/self/smaps.
func vmFlags(t *testing.T, addr uintptr) []string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 { // a mapping's first line
			in = lo <= addr && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.Fields(strings.TrimPrefix(line, "VmFlags:"))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("no mapping holds %#x", addr)
	return nil
}

func TestNewBufferAdvisesHugePages(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skip("kernel without transparent huge pages")
	}
	for _, n := range []int{4 << 20, 4<<20 + 44, 2 << 20} {
		b := chunkstore.NewBuffer(n)
		if len(b) != n {
			t.Fatalf("NewBuffer(%d) has length %d", n, len(b))
		}
		if i := slices.IndexFunc(b, func(c byte) bool { return c != 0 }); i >= 0 {
			t.Fatalf("NewBuffer(%d)[%d] = %d, want zero", n, i, b[i])
		}
		// Every byte of the buffer lies in memory advised for huge pages
		// ("hg"), its first and last included.
		for _, p := range []*byte{&b[0], &b[n/2], &b[n-1]} {
			if flags := vmFlags(t, uintptr(unsafe.Pointer(p))); !slices.Contains(flags, "hg") {
				t.Errorf("NewBuffer(%d): byte at %p is in a mapping with flags %v, want hg among them", n, p, flags)
			}
		}
		for i := range b {
			b[i] = byte(i)
		}
	}
}

func TestBuffersReuse(t *testing.T) {
	p := chunkstore.NewBuffers(12 << 20)
	a := p.Get(4<<20 + 44)
	if len(a) != 4<<20+44 || cap(a) != 5<<20 {
		t.Fatalf("Get(4 MiB+44): len %d cap %d, want len %d cap %d", len(a), cap(a), 4<<20+44, 5<<20)
	}
	p.Put(a)
	b := p.Get(4<<20 + 1)
	if &b[0] != &a[0] || len(b) != 4<<20+1 {
		t.Fatal("Get after Put of a buffer of the same class did not reuse it")
	}
	if c := p.Get(4<<20 + 1); &c[0] == &a[0] {
		t.Fatal("Get handed out a buffer that is in use")
	}
	// A buffer of another class, a slice that starts inside a buffer, and
	// small buffers are not kept.
	p.Put(b[44:])
	if d := p.Get(4<<20 + 1); &d[0] == &b[0] || &d[0] == &b[44] {
		t.Fatal("Get reused a buffer from a slice that did not start it")
	}
	small := p.Get(100)
	p.Put(small)
	if e := p.Get(100); &e[0] == &small[0] {
		t.Fatal("a buffer below a MiB was kept")
	}
	// The bound: two 5 MiB buffers fit in 12 MiB, a third does not.
	x, y, z := p.Get(5<<20), p.Get(5<<20), p.Get(5<<20)
	p.Put(x)
	p.Put(y)
	p.Put(z)
	got := map[*byte]bool{}
	for range 3 {
		got[&p.Get(5 << 20)[0]] = true
	}
	if !got[&x[0]] || !got[&y[0]] || got[&z[0]] {
		t.Fatalf("after Put of three 5 MiB buffers into a 12 MiB list: reused x %v, y %v, z %v; want x and y only", got[&x[0]], got[&y[0]], got[&z[0]])
	}
	// A nil Buffers hands out new zeroed buffers.
	var none *chunkstore.Buffers
	if n := none.Get(3 << 20); len(n) != 3<<20 || slices.ContainsFunc(n, func(c byte) bool { return c != 0 }) {
		t.Fatal("nil Buffers: Get did not return a new zeroed buffer")
	}
	none.Put(a)
}

// TestBuffersFit checks that Fit leaves a buffer of the size class of its
// contents alone and moves the contents of a larger one into one of that
// class, keeping the larger one.
func TestBuffersFit(t *testing.T) {
	p := chunkstore.NewBuffers(64 << 20)
	whole := p.Get(4 << 20)
	if got := p.Fit(whole[:3<<20+5]); &got[0] != &whole[0] || len(got) != 3<<20+5 {
		t.Fatal("Fit moved the contents of a buffer of their own class")
	}
	big := p.Get(4 << 20)
	for i := range big {
		big[i] = byte(i * 3)
	}
	for _, n := range []int{1<<20 + 7, 100 << 10} {
		got := p.Fit(big[:n])
		if &got[0] == &big[0] || len(got) != n || cap(got) != cap(p.Get(n)) {
			t.Fatalf("Fit of %d bytes in a 4 MiB buffer: len %d cap %d, want a buffer of their own class", n, len(got), cap(got))
		}
		for i := range got {
			if got[i] != byte(i*3) {
				t.Fatalf("Fit of %d bytes: byte %d is %d, want %d", n, i, got[i], byte(i*3))
			}
		}
		if again := p.Get(4 << 20); &again[0] != &big[0] {
			t.Fatalf("Fit of %d bytes did not put the 4 MiB buffer back", n)
		}
	}
	var none *chunkstore.Buffers
	n := make([]byte, 2<<20)
	if got := none.Fit(n[:1<<20]); &got[0] == &n[0] || cap(got) != 1<<20 {
		t.Fatal("nil Buffers: Fit did not move the contents into a buffer of their size")
	}
}
