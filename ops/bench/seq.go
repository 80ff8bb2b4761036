package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// seq runs the sequential workload: write SeqBytes, fsync, close; drop
// caches; read it back.
func (r *runner) seq(ctx context.Context) error {
	dir := filepath.Join(r.scratch, "seq")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	defer os.RemoveAll(dir)
	name := filepath.Join(dir, "seq.dat")
	size, block := r.cfg.SeqBytes, r.cfg.SeqBlock
	buf := make([]byte, block)
	pat := r.pattern()

	b := r.prog.bar(r.target.Label+" seq write", size, true)
	start := time.Now()
	if err := writeSeq(ctx, name, size, buf, pat, b); err != nil {
		b.done()
		return fmt.Errorf("write: %w", err)
	}
	r.add(WorkloadSeq, "write", UnitMiBps, size, time.Since(start))
	b.done()

	if err := r.cold(dir); err != nil {
		return err
	}
	b = r.prog.bar(r.target.Label+" seq cold read", size, true)
	start = time.Now()
	n, err := readAll(ctx, name, buf, b)
	elapsed := time.Since(start)
	b.done()
	if err != nil {
		return fmt.Errorf("cold read: %w", err)
	}
	if n != size {
		return fmt.Errorf("cold read %s: got %d bytes, want %d", name, n, size)
	}
	r.add(WorkloadSeq, "cold read", UnitMiBps, size, elapsed)
	return nil
}

// writeSeq creates name and writes size bytes in len(buf) writes, then
// fsyncs and closes it.
func writeSeq(ctx context.Context, name string, size int64, buf []byte, pat *pattern, b *bar) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	for left := size; left > 0; {
		if err := ctx.Err(); err != nil {
			f.Close()
			return err
		}
		chunk := buf
		if int64(len(chunk)) > left {
			chunk = chunk[:left]
		}
		pat.fill(chunk)
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return err
		}
		left -= int64(len(chunk))
		b.add(int64(len(chunk)))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readAll reads name to its end in len(buf) reads and returns the byte
// count.
func readAll(ctx context.Context, name string, buf []byte, b *bar) (int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := f.Read(buf)
		total += int64(n)
		b.add(int64(n))
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
