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
// delete SmallFiles files with Workers parallel workers. Two create
// phases of a quarter as many files, each in a directory of its own, come
// first. With more than one worker, one worker alone creates files, so
// that the report shows what parallel creators gain (a file system that
// commits each create on its own gains little). Then Workers workers
// create files and fsync each before closing it: the figure to compare
// with a file system whose close makes a file durable, as shoal's does.
func (r *runner) small(ctx context.Context) error {
	if r.cfg.Workers > 1 {
		if err := r.sideCreate(ctx, serialCreatePhase, "small-1", 1, writeFile); err != nil {
			return err
		}
	}
	if err := r.sideCreate(ctx, durableCreatePhase, "small-fsync", r.cfg.Workers, writeFileSync); err != nil {
		return err
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
		{"create", false, createAs(name, writeFile)},
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

// Phases of the small-file workload that create files in a directory of
// their own: with one worker, and with an fsync of each file.
const (
	serialCreatePhase  = "create 1 worker"
	durableCreatePhase = "create+fsync"
)

// sideCreate creates a quarter of SmallFiles files with nworkers workers
// and write, in directory dirName of the scratch directory, which it
// then removes (untimed), and reports the rate as phase.
func (r *runner) sideCreate(ctx context.Context, phase, dirName string, nworkers int, write func(name string, data []byte) error) error {
	dir := filepath.Join(r.scratch, dirName)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	defer os.RemoveAll(dir)
	n := max(r.cfg.SmallFiles/4, 1)
	name := func(i int) string { return filepath.Join(dir, fmt.Sprintf("s%06d", i)) }
	elapsed, err := r.parallel(ctx, "small "+phase, n, nworkers, createAs(name, write))
	if err != nil {
		return fmt.Errorf("%s: %w", phase, err)
	}
	r.add(WorkloadSmall, phase, UnitOpsps, int64(n), elapsed)
	return nil
}

// createAs returns a create op of the small-file workload: file i, named
// name(i), gets the worker's next pattern bytes by write.
func createAs(name func(i int) string, write func(name string, data []byte) error) func(w *smallWorker, i int) error {
	return func(w *smallWorker, i int) error {
		w.pat.fill(w.buf)
		return write(name(i), w.buf)
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
func writeFile(name string, data []byte) error { return createFile(name, data, false) }

// writeFileSync is writeFile with an fsync before the close.
func writeFileSync(name string, data []byte) error { return createFile(name, data, true) }

// createFile creates name exclusively, writes data, fsyncs it if sync
// and closes it.
func createFile(name string, data []byte, sync bool) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if err != nil {
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
