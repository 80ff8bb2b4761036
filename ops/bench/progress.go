package bench

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// prog writes progress bars and phase notes to w; a nil w or nil *prog
// writes nothing.
type prog struct {
	mu sync.Mutex
	w  io.Writer
}

func newProgress(w io.Writer) *prog {
	if w == nil {
		return nil
	}
	return &prog{w: w}
}

// notef writes one line.
func (p *prog) notef(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// bar is a progress bar; a nil *bar ignores everything. Safe for
// concurrent use.
type bar struct {
	pb *progressbar.ProgressBar
}

// bar starts a bar of max units; bytes selects byte formatting.
func (p *prog) bar(desc string, max int64, bytes bool) *bar {
	if p == nil || max <= 0 {
		return nil
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200 * time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionUseIECUnits(true))
	} else {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts())
	}
	return &bar{pb: progressbar.NewOptions64(max, opts...)}
}

func (b *bar) add(n int64) {
	if b != nil {
		_ = b.pb.Add64(n)
	}
}

// done ends the bar where it stands (a time-bounded phase may stop short).
func (b *bar) done() {
	if b != nil {
		_ = b.pb.Exit()
	}
}
