package chunkstore

import (
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of a transparent huge page on the platforms shoal
// runs on (x86-64 and arm64 with 4 KiB base pages).
const hugePage = 2 << 20

// NewBuffer returns a zeroed n-byte slice for a chunk's or a block's bytes.
// Buffers of a huge page or more are advised to the kernel as huge-page
// memory (madvise MADV_HUGEPAGE), rounded out to whole huge pages, so that
// they are faulted in 2 MiB at a time rather than 4 KiB: on a virtual
// machine a page fault costs tens of microseconds, and without the advice
// a process's first gigabyte of chunk traffic spent most of its time
// faulting (ops/bench/FINDINGS.md). The advice is a hint:
// where the kernel ignores or refuses it (transparent huge pages set to
// "never"), the buffer is an ordinary one. The memory is
// garbage-collected like any other slice.
func NewBuffer(n int) []byte {
	b := make([]byte, n)
	if n >= hugePage {
		adviseHuge(b)
	}
	return b
}

// adviseHuge marks the huge pages b overlaps as huge-page memory. The
// rounding reaches into b's neighbours in the Go heap, which lie in the
// same heap arena (arenas are mapped in aligned units of 64 MiB) and are
// only made eligible for huge pages; rounding outward rather than inward
// keeps adjacent buffers' advice in one kernel mapping instead of splitting
// it at every buffer.
func adviseHuge(b []byte) {
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := start &^ (hugePage - 1)
	hi := (start + uintptr(len(b)) + hugePage - 1) &^ (hugePage - 1)
	// A hint: whatever the kernel answers, b is usable as it is.
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, unix.MADV_HUGEPAGE)
	runtime.KeepAlive(b)
}

// bufferClass is the granularity of the sizes Buffers keeps: a buffer is
// allocated with its size rounded up to a multiple of it.
const bufferClass = 1 << 20

// Buffers is a free list of large buffers (a MiB or more), so that a
// process moving chunks through memory reuses the same pages instead of
// asking the Go heap for new ones, which the runtime zeroes and, once it
// has returned them to the kernel, faults in again. Buffers are kept by
// capacity, rounded up to a whole MiB, up to a bound on the bytes kept.
// Safe for concurrent use.
type Buffers struct {
	max int64 // bytes kept at most

	mu    sync.Mutex
	bytes int64
	free  map[int][][]byte // by capacity
}

// NewBuffers returns a free list that keeps up to max bytes of buffers.
func NewBuffers(max int64) *Buffers {
	return &Buffers{max: max, free: map[int][][]byte{}}
}

// Get returns a slice of n bytes whose contents are unspecified: a kept
// buffer of the right capacity if there is one, else a new one from
// NewBuffer (below a MiB, always a new zeroed one). A nil Buffers always
// returns NewBuffer(n).
func (p *Buffers) Get(n int) []byte {
	if p == nil || n < bufferClass {
		return NewBuffer(n)
	}
	c := p.capOf(n)
	p.mu.Lock()
	if list := p.free[c]; len(list) > 0 {
		b := list[len(list)-1]
		list[len(list)-1] = nil
		p.free[c] = list[:len(list)-1]
		p.bytes -= int64(c)
		p.mu.Unlock()
		return b[:n]
	}
	p.mu.Unlock()
	return NewBuffer(c)[:n]
}

// Fit returns b's bytes in memory of the capacity Get(len(b)) hands out:
// b itself if it has that capacity, else a copy, b being Put back. A
// buffer got for a larger size than it came to hold so takes up no more
// memory than one got for its size.
func (p *Buffers) Fit(b []byte) []byte {
	if cap(b) == p.capOf(len(b)) {
		return b
	}
	fit := p.Get(len(b))
	copy(fit, b)
	p.Put(b)
	return fit
}

// capOf is the capacity of the buffers Get(n) returns.
func (p *Buffers) capOf(n int) int {
	if p == nil || n < bufferClass {
		return n
	}
	return (n + bufferClass - 1) / bufferClass * bufferClass
}

// Put offers b for reuse. The caller gives b up: nothing may refer to its
// memory any more. Buffers of a capacity Get never hands out, or beyond
// the bound, are left to the garbage collector.
func (p *Buffers) Put(b []byte) {
	c := cap(b)
	if p == nil || c < bufferClass || c%bufferClass != 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bytes+int64(c) > p.max {
		return
	}
	p.free[c] = append(p.free[c], b[:0])
	p.bytes += int64(c)
}
