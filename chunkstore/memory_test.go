package chunkstore_test

import (
	"context"
	"errors"
	"testing"

	"shoal/chunkstore"
	"shoal/chunkstore/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chunkstore.Store { return chunkstore.NewMemory() })
}

func TestMemoryCorrupt(t *testing.T) {
	m := chunkstore.NewMemory()
	data, id := storetest.Chunk(1, 100)
	if err := m.Put(context.Background(), id, data); err != nil {
		t.Fatal(err)
	}
	if !m.Corrupt(id, []byte("other")) {
		t.Fatal("Corrupt: got false, want true")
	}
	if _, err := m.Get(context.Background(), id); !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Fatalf("Get of corrupted chunk: got error %v, want ErrCorrupt", err)
	}
}
