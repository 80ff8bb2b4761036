package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// small runs the small-file workload: create, stat, read, rename and
// delete SmallFiles files with Workers parallel workers. With more than
// one worker, a quarter as many files are first created by one worker
// alone, in a directory of their own, so that the report shows what
// parallel creators gain (a file system that commits each create on its
// own gains little).
func (r *runner) small(ctx context.Context) error {
	if r.cfg.Workers > 1 {
		if err := r.serialCreate(ctx); err != nil {
			return err
		}
	}
	dir := filepath.Join(r.scratch, "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	defer os.RemoveAll(dir)
	n, size := r.cfg.SmallFiles, r.cfg.SmallFileBytes
	name := func(i int) string { return filepath.Join(dir, fmt.Sprintf("f%06d", i)) }
	renamed := func(i int) string { return filepath.Join(dir, fmt.Sprintf("r%06d", i)) }

	phases := []struct {
		phase string
		cold  bool
		op    func(w *smallWorker, i int) error
	}{
		{"create", false, createAs(name)},
		{"stat", true, func(w *smallWorker, i int) error {
			fi, err := os.Stat(name(i))
			if err == nil && fi.Size() != int64(size) {
				err = fmt.Errorf("stat %s: got size %d, want %d", name(i), fi.Size(), size)
			}
			return err
		}},
		{"read", false, func(w *smallWorker, i int) error {
			return readFile(name(i), w.buf)
		}},
		{"rename", false, func(w *smallWorker, i int) error {
			return os.Rename(name(i), renamed(i))
		}},
		{"delete", false, func(w *smallWorker, i int) error {
			return os.Remove(renamed(i))
		}},
	}
	for _, p := range phases {
		if p.cold {
			if err := r.cold(dir); err != nil {
				return err
			}
		}
		elapsed, err := r.parallel(ctx, "small "+p.phase, n, r.cfg.Workers, p.op)
		if err != nil {
			return fmt.Errorf("%s: %w", p.phase, err)
		}
		r.add(WorkloadSmall, p.phase, UnitOpsps, int64(n), elapsed)
	}
	return nil
}

// serialCreatePhase names the one-worker create phase of the small-file
// workload.
const serialCreatePhase = "create 1 worker"

// serialCreate creates a quarter of SmallFiles files with one worker, in
// a directory of its own that it then removes (untimed).
func (r *runner) serialCreate(ctx context.Context) error {
	dir := filepath.Join(r.scratch, "small-1")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	defer os.RemoveAll(dir)
	n := max(r.cfg.SmallFiles/4, 1)
	name := func(i int) string { return filepath.Join(dir, fmt.Sprintf("s%06d", i)) }
	elapsed, err := r.parallel(ctx, "small "+serialCreatePhase, n, 1, createAs(name))
	if err != nil {
		return fmt.Errorf("%s: %w", serialCreatePhase, err)
	}
	r.add(WorkloadSmall, serialCreatePhase, UnitOpsps, int64(n), elapsed)
	return nil
}

// createAs returns the create op of the small-file workload: file i,
// named name(i), gets the worker's next pattern bytes.
func createAs(name func(i int) string) func(w *smallWorker, i int) error {
	return func(w *smallWorker, i int) error {
		w.pat.fill(w.buf)
		return writeFile(name(i), w.buf)
	}
}

// smallWorker is one worker's private state.
type smallWorker struct {
	buf []byte
	pat *pattern
}

// parallel runs op for i in [0, n) spread over nworkers goroutines and
// returns the wall time. The first error stops all workers.
func (r *runner) parallel(ctx context.Context, desc string, n, nworkers int, op func(w *smallWorker, i int) error) (time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := make([]*smallWorker, nworkers)
	for k := range workers {
		// A pattern per worker, so no two files share contents.
		workers[k] = &smallWorker{buf: make([]byte, r.cfg.SmallFileBytes), pat: r.pattern()}
	}
	b := r.prog.bar(r.target.Label+" "+desc, int64(n), false)
	defer b.done()
	var wg sync.WaitGroup
	start := time.Now()
	for k, w := range workers {
		wg.Go(func() {
			const step = 32
			done := 0
			for i := k; i < n; i += len(workers) {
				if ctx.Err() != nil {
					return
				}
				if err := op(w, i); err != nil {
					cancel(err)
					return
				}
				if done++; done == step {
					b.add(step)
					done = 0
				}
			}
			b.add(int64(done))
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	return elapsed, nil
}

// writeFile creates name exclusively, writes data and closes it.
func writeFile(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readFile reads name whole, expecting exactly len(buf) bytes.
func readFile(name string, buf []byte) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.ReadFull(f, buf)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	// One more read must hit EOF, so the size is exactly right.
	if m, _ := f.Read(buf[:1]); m != 0 {
		return fmt.Errorf("read %s: got more than %d bytes, want %d", name, n, len(buf))
	}
	return nil
}
