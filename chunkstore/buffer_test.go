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
