// Package storetest is a conformance suite for chunkstore.Store
// implementations. Every store (memory, disk, remote, caching) runs Run
// against fresh instances of itself; the optional Deleter, Lister, Stater
// and Toucher behaviours are checked when the store implements them.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"shoal/chunkstore"
)

// Run runs the conformance suite as subtests of t. newStore must return a
// fresh, empty store each time it is called and arrange its cleanup with
// t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) chunkstore.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s chunkstore.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Ownership", testOwnership},
		{"IdempotentPut", testIdempotentPut},
		{"NotFound", testNotFound},
		{"ConcurrentSameID", testConcurrentSame},
		{"ConcurrentDifferentIDs", testConcurrentDifferent},
		{"Delete", testDelete},
		{"DeleteRefreshedByPut", testDeleteRefresh},
		{"PutAfterDelete", testPutAfterDelete},
		{"ConcurrentPutDeleteGet", testConcurrentPutDelete},
		{"Touch", testTouch},
		{"List", testList},
		{"Stat", testStat},
		{"LazyPut", testLazyPut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// Chunk returns n pseudo-random bytes derived from seed and their ID. The
// bytes do not compress.
func Chunk(seed uint64, n int) ([]byte, chunkstore.ID) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b, chunkstore.Sum(b)
}

func put(t *testing.T, s chunkstore.Store, id chunkstore.ID, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), id, data); err != nil {
		t.Fatalf("Put(%s): %v", id, err)
	}
}

func mustGet(t *testing.T, s chunkstore.Store, id chunkstore.ID, want []byte) {
	t.Helper()
	got, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%s): got %d bytes (sum %s), want %d bytes", id, len(got), chunkstore.Sum(got), len(want))
	}
}

func mustHas(t *testing.T, s chunkstore.Store, id chunkstore.ID, want bool) {
	t.Helper()
	got, err := s.Has(context.Background(), id)
	if err != nil {
		t.Fatalf("Has(%s): %v", id, err)
	}
	if got != want {
		t.Fatalf("Has(%s): got %v, want %v", id, got, want)
	}
}

func testRoundTrip(t *testing.T, s chunkstore.Store) {
	compressible := bytes.Repeat([]byte("shoal chunk "), 4<<20/12)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", []byte{}},
		{"one byte", []byte{42}},
		{"odd size", func() []byte { b, _ := Chunk(1, 4097); return b }()},
		{"4MiB random", func() []byte { b, _ := Chunk(2, 4<<20); return b }()},
		{"4MiB compressible", compressible},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := chunkstore.Sum(tt.data)
			mustHas(t, s, id, false)
			put(t, s, id, tt.data)
			mustHas(t, s, id, true)
			mustGet(t, s, id, tt.data)
		})
	}
}

func testOwnership(t *testing.T, s chunkstore.Store) {
	data, id := Chunk(3, 1000)
	orig := bytes.Clone(data)
	put(t, s, id, data)
	data[0] ^= 0xff // the caller may reuse its buffer after Put
	mustGet(t, s, id, orig)
	got, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	got[1] ^= 0xff // the caller owns what Get returned
	mustGet(t, s, id, orig)
}

func testIdempotentPut(t *testing.T, s chunkstore.Store) {
	data, id := Chunk(4, 10000)
	for range 3 {
		put(t, s, id, data)
	}
	mustGet(t, s, id, data)
}

func testNotFound(t *testing.T, s chunkstore.Store) {
	_, id := Chunk(5, 100)
	_, err := s.Get(context.Background(), id)
	if !errors.Is(err, chunkstore.ErrNotFound) {
		t.Fatalf("Get(absent): got error %v, want ErrNotFound", err)
	}
	mustHas(t, s, id, false)
}

func testConcurrentSame(t *testing.T, s chunkstore.Store) {
	data, id := Chunk(6, 64<<10)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if err := s.Put(context.Background(), id, data); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Put: %v", err)
	}
	mustGet(t, s, id, data)
	if st, ok := s.(chunkstore.Stater); ok {
		u, err := st.Stat(context.Background())
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if u.Chunks != 1 {
			t.Errorf("Stat after 16 Puts of one chunk: got %d chunks, want 1", u.Chunks)
		}
	}
}

func testConcurrentDifferent(t *testing.T, s chunkstore.Store) {
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Go(func() {
			data, id := Chunk(uint64(100+i), 1000+i*997)
			if err := s.Put(context.Background(), id, data); err != nil {
				errs <- err
				return
			}
			got, err := s.Get(context.Background(), id)
			if err != nil {
				errs <- err
			} else if !bytes.Equal(got, data) {
				errs <- fmt.Errorf("Get(%s): got other bytes than put", id)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func deleter(t *testing.T, s chunkstore.Store) chunkstore.Deleter {
	t.Helper()
	d, ok := s.(chunkstore.Deleter)
	if !ok {
		t.Skip("store is not a Deleter")
	}
	return d
}

func del(t *testing.T, d chunkstore.Deleter, id chunkstore.ID, before time.Time, want bool) {
	t.Helper()
	got, err := d.Delete(context.Background(), id, before)
	if err != nil {
		t.Fatalf("Delete(%s): %v", id, err)
	}
	if got != want {
		t.Fatalf("Delete(%s, %v): got removed=%v, want %v", id, before, got, want)
	}
}

// later is a time safely after anything the test has done so far.
func later() time.Time { return time.Now().Add(time.Minute) }

func testDelete(t *testing.T, s chunkstore.Store) {
	d := deleter(t, s)
	data, id := Chunk(7, 5000)
	del(t, d, id, later(), false) // absent
	beforePut := time.Now()
	put(t, s, id, data)
	del(t, d, id, beforePut, false) // put after the cut-off: kept
	mustGet(t, s, id, data)
	del(t, d, id, later(), true)
	mustHas(t, s, id, false)
	if _, err := s.Get(context.Background(), id); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Fatalf("Get after Delete: got error %v, want ErrNotFound", err)
	}
	del(t, d, id, later(), false) // already gone
}

func testDeleteRefresh(t *testing.T, s chunkstore.Store) {
	d := deleter(t, s)
	data, id := Chunk(8, 5000)
	put(t, s, id, data)
	mark := time.Now()
	put(t, s, id, data) // refreshes the chunk's time past mark
	del(t, d, id, mark, false)
	mustGet(t, s, id, data)
}

func testPutAfterDelete(t *testing.T, s chunkstore.Store) {
	d := deleter(t, s)
	data, id := Chunk(9, 5000)
	put(t, s, id, data)
	del(t, d, id, later(), true)
	put(t, s, id, data)
	mustHas(t, s, id, true)
	mustGet(t, s, id, data)
}

// testConcurrentPutDelete races Put, Delete and Get on one chunk: Get must
// return the chunk or ErrNotFound, never anything else; a Put that starts
// after the Delete cut-off keeps the chunk.
func testConcurrentPutDelete(t *testing.T, s chunkstore.Store) {
	d := deleter(t, s)
	data, id := Chunk(10, 32<<10)
	cut := later()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 4 {
		wg.Go(func() {
			for range 5 {
				if err := s.Put(context.Background(), id, data); err != nil {
					errs <- err
				}
				if _, err := d.Delete(context.Background(), id, cut); err != nil {
					errs <- err
				}
				got, err := s.Get(context.Background(), id)
				if err != nil && !errors.Is(err, chunkstore.ErrNotFound) {
					errs <- fmt.Errorf("Get during Put/Delete race: %w", err)
				} else if err == nil && !bytes.Equal(got, data) {
					errs <- fmt.Errorf("Get during Put/Delete race: got other bytes than put")
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mark := time.Now()
	put(t, s, id, data)
	del(t, d, id, mark, false)
	mustGet(t, s, id, data)
}

func testTouch(t *testing.T, s chunkstore.Store) {
	tc, ok := s.(chunkstore.Toucher)
	if !ok {
		t.Skip("store is not a Toucher")
	}
	touch := func(id chunkstore.ID, want bool) {
		t.Helper()
		got, err := tc.Touch(context.Background(), id)
		if err != nil {
			t.Fatalf("Touch(%s): %v", id, err)
		}
		if got != want {
			t.Fatalf("Touch(%s): got present=%v, want %v", id, got, want)
		}
	}
	data, id := Chunk(12, 5000)
	touch(id, false)
	mustHas(t, s, id, false) // Touch does not create
	put(t, s, id, data)
	mark := time.Now()
	touch(id, true)
	mustGet(t, s, id, data)
	if d, ok := s.(chunkstore.Deleter); ok {
		del(t, d, id, mark, false) // touched after the cut-off: kept
		mustGet(t, s, id, data)
		del(t, d, id, later(), true)
		touch(id, false)
	}
}

func testList(t *testing.T, s chunkstore.Store) {
	l, ok := s.(chunkstore.Lister)
	if !ok {
		t.Skip("store is not a Lister")
	}
	start := time.Now().Add(-time.Minute)
	want := map[chunkstore.ID]bool{}
	for i := range 5 {
		data, id := Chunk(uint64(200+i), 100*i)
		put(t, s, id, data)
		want[id] = true
	}
	got := map[chunkstore.ID]bool{}
	err := l.List(context.Background(), func(id chunkstore.ID, mt time.Time) error {
		if got[id] {
			t.Errorf("List: %s reported twice", id)
		}
		got[id] = true
		if mt.Before(start) || mt.After(later()) {
			t.Errorf("List: %s has time %v, want about %v", id, mt, time.Now())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("List: got %d chunks, want %d", len(got), len(want))
	}
	for id := range want {
		if !got[id] {
			t.Errorf("List: %s missing", id)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err = l.List(context.Background(), func(chunkstore.ID, time.Time) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List with failing fn: got error %v after %d calls, want %v after 1", err, calls, stop)
	}
}

func testStat(t *testing.T, s chunkstore.Store) {
	st, ok := s.(chunkstore.Stater)
	if !ok {
		t.Skip("store is not a Stater")
	}
	stat := func() chunkstore.Usage {
		t.Helper()
		u, err := st.Stat(context.Background())
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		return u
	}
	u0 := stat()
	if u0.Chunks != 0 || u0.Bytes != 0 {
		t.Fatalf("Stat of empty store: got %d chunks, %d bytes, want 0, 0", u0.Chunks, u0.Bytes)
	}
	if u0.Available > u0.Capacity {
		t.Errorf("Stat: got Available %d > Capacity %d", u0.Available, u0.Capacity)
	}
	data, id := Chunk(11, 100000)
	put(t, s, id, data)
	put(t, s, id, data)
	u1 := stat()
	if u1.Chunks != 1 {
		t.Errorf("Stat after Put: got %d chunks, want 1", u1.Chunks)
	}
	if u1.Bytes < int64(len(data)) {
		t.Errorf("Stat after Put of %d random bytes: got %d bytes, want at least that", len(data), u1.Bytes)
	}
	if d, ok := s.(chunkstore.Deleter); ok {
		del(t, d, id, later(), true)
		if u2 := stat(); u2.Chunks != 0 || u2.Bytes != 0 {
			t.Errorf("Stat after Delete: got %d chunks, %d bytes, want 0, 0", u2.Chunks, u2.Bytes)
		}
	}
}

// testLazyPut checks a LazyPutter: lazily stored chunks read back at once,
// count like others, survive Sync, and mix with Put and Delete.
func testLazyPut(t *testing.T, s chunkstore.Store) {
	lp, ok := s.(chunkstore.LazyPutter)
	if !ok {
		t.Skip("not a LazyPutter")
	}
	ctx := context.Background()
	a, aid := Chunk(70, 1000)
	b, bid := Chunk(71, 64<<10)
	c, cid := Chunk(72, 10)
	for _, ch := range []struct {
		id   chunkstore.ID
		data []byte
	}{{aid, a}, {bid, b}, {cid, c}} {
		if err := lp.PutLazy(ctx, ch.id, ch.data); err != nil {
			t.Fatalf("PutLazy(%s): %v", ch.id, err)
		}
		mustHas(t, s, ch.id, true)
		mustGet(t, s, ch.id, ch.data)
	}
	// A durable Put of a lazily stored chunk, and a second PutLazy, keep it.
	put(t, s, aid, a)
	if err := lp.PutLazy(ctx, bid, b); err != nil {
		t.Fatalf("PutLazy(%s) again: %v", bid, err)
	}
	if d, ok := s.(chunkstore.Deleter); ok {
		if _, err := d.Delete(ctx, cid, time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("Delete(%s): %v", cid, err)
		}
		mustHas(t, s, cid, false)
	}
	if err := lp.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := lp.Sync(ctx); err != nil {
		t.Fatalf("Sync with nothing pending: %v", err)
	}
	mustGet(t, s, aid, a)
	mustGet(t, s, bid, b)
	if st, ok := s.(chunkstore.Stater); ok {
		u, err := st.Stat(ctx)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		want := int64(2)
		if _, ok := s.(chunkstore.Deleter); !ok {
			want = 3
		}
		if u.Chunks != want {
			t.Errorf("Stat: got %d chunks, want %d", u.Chunks, want)
		}
	}
}
