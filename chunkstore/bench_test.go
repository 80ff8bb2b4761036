package chunkstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"shoal/chunkstore"
	"shoal/chunkstore/storetest"
)

const benchChunk = 4 << 20

var farFuture = time.Now().Add(24 * time.Hour)

func compressibleChunk(seed uint64) []byte {
	line := bytes.Repeat([]byte("func (d *Disk) Put(ctx context.Context, id ID, data []byte) error {\n"), benchChunk/64)
	binary.LittleEndian.PutUint64(line, seed)
	return line[:benchChunk]
}

func benchData(b *testing.B, kind string, i int) ([]byte, chunkstore.ID) {
	if kind == "random" {
		return storetest.Chunk(uint64(i), benchChunk)
	}
	data := compressibleChunk(uint64(i))
	return data, chunkstore.Sum(data)
}

func BenchmarkDiskPut(b *testing.B) {
	for _, compress := range []bool{false, true} {
		for _, kind := range []string{"random", "text"} {
			b.Run(map[bool]string{false: "plain", true: "zstd"}[compress]+"/"+kind, func(b *testing.B) {
				d, err := chunkstore.OpenDisk(b.TempDir(), chunkstore.DiskOptions{Compress: compress})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { d.Close() })
				// Distinct chunks, prepared outside the timer.
				const n = 16
				datas := make([][]byte, n)
				ids := make([]chunkstore.ID, n)
				for i := range n {
					datas[i], ids[i] = benchData(b, kind, i)
				}
				b.SetBytes(benchChunk)
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					if i > 0 && i%n == 0 {
						b.StopTimer()
						for _, id := range ids {
							d.Delete(context.Background(), id, farFuture)
						}
						b.StartTimer()
					}
					if err := d.Put(context.Background(), ids[i%n], datas[i%n]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkDiskGet(b *testing.B) {
	for _, compress := range []bool{false, true} {
		for _, kind := range []string{"random", "text"} {
			b.Run(map[bool]string{false: "plain", true: "zstd"}[compress]+"/"+kind, func(b *testing.B) {
				d, err := chunkstore.OpenDisk(b.TempDir(), chunkstore.DiskOptions{Compress: compress})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { d.Close() })
				data, id := benchData(b, kind, 1)
				if err := d.Put(context.Background(), id, data); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(benchChunk)
				for b.Loop() {
					if _, err := d.Get(context.Background(), id); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkCompress(b *testing.B) {
	for _, kind := range []string{"random", "text"} {
		b.Run(kind, func(b *testing.B) {
			data, _ := benchData(b, kind, 1)
			dst := make([]byte, 0, benchChunk)
			b.SetBytes(benchChunk)
			for b.Loop() {
				chunkstore.Compress(dst[:0], data)
			}
		})
	}
}

func BenchmarkSplit(b *testing.B) {
	data, _ := storetest.Chunk(1, benchChunk)
	s := chunkstore.Scheme{Data: 4, Parity: 2}
	b.SetBytes(benchChunk)
	for b.Loop() {
		if _, err := s.Split(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiskPutParallel measures durable Puts of distinct chunks from
// many goroutines at once, as a node storing the shards pushed to it in
// parallel does. Every Put writes a new chunk file; the store grows by
// b.N chunks.
func BenchmarkDiskPutParallel(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"4MiB", 4 << 20}, {"64KiB", 64 << 10}} {
		b.Run(size.name, func(b *testing.B) {
			d, err := chunkstore.OpenDisk(b.TempDir(), chunkstore.DiskOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { d.Close() })
			// Put does not check that data hashes to id, so every Put can
			// store the same random bytes under a new id without paying for
			// a SHA-256 inside the timed loop.
			data, _ := storetest.Chunk(1, size.n)
			var next atomic.Uint64
			b.SetBytes(int64(size.n))
			b.SetParallelism(8) // 8 writers per CPU
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					// Spread the ids over fan-out directories and lock
					// stripes as real ones are.
					id := chunkstore.Sum(binary.LittleEndian.AppendUint64(nil, next.Add(1)))
					if err := d.Put(context.Background(), id, data); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
