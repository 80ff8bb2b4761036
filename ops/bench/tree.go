package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// tree runs the tree workload: cp -a TreeSource, read every file cold,
// remove the copy.
func (r *runner) tree(ctx context.Context) error {
	src := r.cfg.TreeSource
	files, _, err := countTree(ctx, src)
	if err != nil {
		return fmt.Errorf("scan source: %w", err)
	}
	dst := filepath.Join(r.scratch, "tree")
	defer os.RemoveAll(dst)

	r.prog.notef("%s: tree copy of %s (%d files)", r.target.Label, src, files)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "cp", "-a", "--", src, dst)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cp -a %s %s: %w: %s", src, dst, err, strings.TrimSpace(stderr.String()))
	}
	r.add(WorkloadTree, "copy", UnitSeconds, files, time.Since(start))

	if err := r.cold(dst); err != nil {
		return err
	}
	b := r.prog.bar(r.target.Label+" tree read", files, false)
	start = time.Now()
	got, err := readTree(ctx, dst, b)
	elapsed := time.Since(start)
	b.done()
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if got != files {
		return fmt.Errorf("read %s: got %d files, want %d", dst, got, files)
	}
	r.add(WorkloadTree, "read", UnitSeconds, files, elapsed)

	r.prog.notef("%s: tree remove", r.target.Label)
	start = time.Now()
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("remove %s: %w", dst, err)
	}
	r.add(WorkloadTree, "remove", UnitSeconds, files, time.Since(start))
	return nil
}

// countTree returns the number and total size of the regular files under
// root.
func countTree(ctx context.Context, root string) (files, size int64, err error) {
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			files++
			size += fi.Size()
		}
		return nil
	})
	return files, size, err
}

// readTree reads every regular file under root to its end and returns how
// many it read.
func readTree(ctx context.Context, root string, b *bar) (int64, error) {
	buf := make([]byte, 256<<10)
	var files int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		_, err = io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		files++
		b.add(1)
		return nil
	})
	return files, err
}
