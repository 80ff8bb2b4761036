package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"

	"shoal/wire"
)

func TestLocalDo(t *testing.T) {
	l := NewLocal(StateConfig{}, nil)
	ctx := context.Background()
	req := &MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "f", Mode: 0o644}
	resp, err := l.Do(ctx, req)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if resp.Attr.Mtime == 0 || req.Now != 0 {
		t.Fatalf("stamping: got mtime %d and req.Now %d, want a time and 0", resp.Attr.Mtime, req.Now)
	}
	resp, err = l.Do(ctx, &MetaRequest{Op: wire.OpCreate, Ino: 1, Name: "f", Flags: wire.CreateExcl})
	if !errors.Is(err, syscall.EEXIST) || resp != nil {
		t.Fatalf("create excl: got %v, %v; want nil, EEXIST", resp, err)
	}
	resp, err = l.Do(ctx, &MetaRequest{Op: wire.OpSetAttr, Ino: 2, Valid: wire.SetMtime, Mtime: 1, Now: 42})
	if err != nil || resp.Attr.Ctime != 42 || resp.Attr.Mtime != 1 {
		t.Fatalf("setattr with Now: got %+v, %v; want ctime 42 mtime 1", resp, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Do(cctx, &MetaRequest{Op: wire.OpStatfs}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: got %v, want context.Canceled", err)
	}
	var n uint64
	l.View(func(s *State) { n, _ = s.Counts() })
	if n != 2 {
		t.Fatalf("inodes: got %d, want 2", n)
	}
}

func TestLocalConcurrent(t *testing.T) {
	l := NewLocal(StateConfig{}, nil)
	ctx := context.Background()
	const workers, per = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir, err := l.Do(ctx, &MetaRequest{Op: wire.OpMkdir, Ino: 1, Name: Name(fmt.Sprint("d", w)), Mode: 0o755})
			if err != nil {
				errs <- err
				return
			}
			for i := range per {
				name := fmt.Sprint("f", i)
				if _, err := l.Do(ctx, &MetaRequest{Op: wire.OpCreate, Ino: dir.Attr.Ino, Name: Name(name)}); err != nil {
					errs <- err
					return
				}
				if _, err := l.Do(ctx, &MetaRequest{Op: wire.OpLookup, Ino: dir.Attr.Ino, Name: Name(name)}); err != nil {
					errs <- err
					return
				}
				if _, err := l.Do(ctx, &MetaRequest{Op: wire.OpReadDir, Ino: 1}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	resp, err := l.Do(ctx, &MetaRequest{Op: wire.OpStatfs})
	if err != nil || resp.Statfs.Files != 1+workers*(1+per) {
		t.Fatalf("statfs: got %+v, %v; want %d files", resp, err, 1+workers*(1+per))
	}
	root, _ := l.Do(ctx, &MetaRequest{Op: wire.OpGetAttr, Ino: 1})
	if root.Attr.Nlink != 2+workers {
		t.Fatalf("root nlink: got %d, want %d", root.Attr.Nlink, 2+workers)
	}
	l.View(func(s *State) {
		if err := s.check(); err != nil {
			t.Fatalf("invariants: %v", err)
		}
	})
}
