package chunkstore

import (
	"runtime"
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
// faulting (see README, "Where the time goes"). The advice is a hint: where
// the kernel ignores or refuses it (transparent huge pages set to
// "never"), the buffer is an ordinary one. The memory is garbage-collected
// like any other slice.
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
