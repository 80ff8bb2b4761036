package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// randBlock is the size of each random read and write.
const randBlock = 4096

// random runs the random workload: lay down RandBytes (untimed), drop
// caches, then timed random reads and timed random writes plus fsync.
func (r *runner) random(ctx context.Context) error {
	dir := filepath.Join(r.scratch, "random")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	defer os.RemoveAll(dir)
	name := filepath.Join(dir, "random.dat")
	size := r.cfg.RandBytes - r.cfg.RandBytes%randBlock
	pat := r.pattern()
	b := r.prog.bar(r.target.Label+" random setup", size, true)
	err := writeSeq(ctx, name, size, make([]byte, min(1<<20, size)), pat, b)
	b.done()
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := r.cold(dir); err != nil {
		return err
	}

	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	blocks := size / randBlock
	buf := make([]byte, randBlock)

	rng := rand.New(rand.NewPCG(3, 3))
	ops, elapsed, err := r.randPhase(ctx, "random read", func() error {
		off := rng.Int64N(blocks) * randBlock
		n, err := f.ReadAt(buf, off)
		if err == nil && n != randBlock {
			err = fmt.Errorf("short read at %d: got %d bytes, want %d", off, n, randBlock)
		}
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	r.add(WorkloadRandom, "4k read", UnitIOPS, ops, elapsed)

	rng = rand.New(rand.NewPCG(4, 4))
	ops, elapsed, err = r.randPhase(ctx, "random write", func() error {
		pat.fill(buf)
		_, err := f.WriteAt(buf, rng.Int64N(blocks)*randBlock)
		return err
	}, f.Sync)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	r.add(WorkloadRandom, "4k write+fsync", UnitIOPS, ops, elapsed)
	return nil
}

// randPhase calls op until RandOps calls or RandDuration have passed,
// then finish if not nil, and returns the count and the total time.
func (r *runner) randPhase(ctx context.Context, desc string, op, finish func() error) (int64, time.Duration, error) {
	b := r.prog.bar(r.target.Label+" "+desc, int64(r.cfg.RandOps), false)
	defer b.done()
	start := time.Now()
	deadline := start.Add(r.cfg.RandDuration)
	var n int64
	for n < int64(r.cfg.RandOps) {
		if err := ctx.Err(); err != nil {
			return n, 0, err
		}
		// Checking the clock every 64 ops keeps its cost out of the figure.
		// The bar advances in the same steps.
		if n%64 == 0 {
			if n > 0 {
				b.add(64)
			}
			if time.Now().After(deadline) {
				break
			}
		}
		if err := op(); err != nil {
			return n, 0, err
		}
		n++
	}
	if finish != nil {
		if err := finish(); err != nil {
			return n, 0, err
		}
	}
	return n, time.Since(start), nil
}
