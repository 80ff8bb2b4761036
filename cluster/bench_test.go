package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shoal/chunkstore"
	"shoal/wire"
)

var (
	benchOnce sync.Once
	benchC    *Client
	benchErr  error
)

// benchClient returns a client of one node shared by all benchmarks of the
// run (a node takes a second or two to elect itself).
func benchClient(b *testing.B) *Client {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shoal-bench-node-")
		if err != nil {
			benchErr = err
			return
		}
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		n, err := StartNode(NodeConfig{ID: "bench", DataDir: dir, Listen: "127.0.0.1:0", RaftListen: "127.0.0.1:0", GCInterval: -1, Logger: quiet})
		if err != nil {
			benchErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if benchErr = n.WaitLeader(ctx); benchErr != nil {
			return
		}
		benchC, benchErr = Dial(ctx, n.Addr(), ClientConfig{Logger: quiet})
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchC
}

// BenchmarkMetaCreate measures creates through a real node (Raft, bolt
// fsync, the wire) with b's parallelism.
func BenchmarkMetaCreate(b *testing.B) {
	c := benchClient(b)
	var seq atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			name := fmt.Sprintf("f%d", seq.Add(1))
			if _, err := c.Do(context.Background(), &MetaRequest{Op: wire.OpCreate, Ino: wire.RootIno, Name: Name(name), Mode: 0o644}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkMetaGetAttr measures a read-only round trip.
func BenchmarkMetaGetAttr(b *testing.B) {
	c := benchClient(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Do(context.Background(), &MetaRequest{Op: wire.OpGetAttr, Ino: wire.RootIno}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkChunkPut measures pushing 4 KiB chunks to a node.
func BenchmarkChunkPut(b *testing.B) {
	c := benchClient(b)
	var seq atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			data := []byte(fmt.Sprintf("chunk %d", seq.Add(1)))
			if err := c.Put(context.Background(), chunkstore.Sum(data), data); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// bigChunk returns a distinct 4 MiB chunk for seq.
func bigChunk(seq int64) []byte {
	data := make([]byte, 4<<20)
	for i := 0; i < len(data); i += 8 {
		data[i] = byte(i>>8) ^ byte(seq)
		data[i+1] = byte(seq >> 8)
		data[i+2] = byte(seq >> 16)
	}
	return data
}

// BenchmarkChunkPutBig measures pushing distinct 4 MiB chunks to a node
// (fsynced there), four at a time as a mount's uploads are.
func BenchmarkChunkPutBig(b *testing.B) {
	c := benchClient(b)
	var seq atomic.Int64
	seq.Store(time.Now().UnixNano())
	b.SetBytes(4 << 20)
	b.SetParallelism(2) // 2 per core: 4 on a 2-core machine
	b.RunParallel(func(pb *testing.PB) {
		data := bigChunk(seq.Add(1))
		for pb.Next() {
			data[0]++
			data[1] = byte(seq.Add(1))
			if err := c.Put(context.Background(), chunkstore.Sum(data), data); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkChunkGetBig measures fetching 4 MiB chunks from a node, four at
// a time as read-ahead does, including the client's check of each id.
func BenchmarkChunkGetBig(b *testing.B) {
	c := benchClient(b)
	var ids []chunkstore.ID
	for i := range 16 {
		data := bigChunk(int64(i) + 1<<40)
		id := chunkstore.Sum(data)
		if err := c.Put(context.Background(), id, data); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	var seq atomic.Int64
	b.SetBytes(4 << 20)
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Get(context.Background(), ids[seq.Add(1)%int64(len(ids))]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

var (
	bench3Once sync.Once
	bench3C    *Client
	bench3Err  error
)

// bench3Client returns a client of the leader of a 3-node cluster of
// in-process nodes (Raft between them on loopback), shared by the run.
func bench3Client(b *testing.B) *Client {
	bench3Once.Do(func() {
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		var nodes []*Node
		for i := range 3 {
			dir, err := os.MkdirTemp("", "shoal-bench-cluster-")
			if err != nil {
				bench3Err = err
				return
			}
			cfg := NodeConfig{ID: fmt.Sprintf("b%d", i), DataDir: dir, Listen: "127.0.0.1:0", RaftListen: "127.0.0.1:0",
				GCInterval: -1, RepairInterval: -1, Secret: []byte("bench secret"), Logger: quiet}
			if i > 0 {
				cfg.Join = nodes[0].Addr()
			}
			n, err := StartNode(cfg)
			if err != nil {
				bench3Err = err
				return
			}
			nodes = append(nodes, n)
			if i == 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				bench3Err = n.WaitLeader(ctx)
				cancel()
				if bench3Err != nil {
					return
				}
				for !n.ready.Load() {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}
		bench3C, bench3Err = Dial(context.Background(), nodes[0].Addr(), ClientConfig{Logger: quiet, Pin: true})
	})
	if bench3Err != nil {
		b.Fatal(bench3Err)
	}
	return bench3C
}

// BenchmarkClusterCreate measures creates on a 3-node cluster with 1, 4
// and 16 creators at once; Raft batches concurrent proposals into one log
// write, so more creators get more creates per second.
func BenchmarkClusterCreate(b *testing.B) {
	for _, creators := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("creators=%d", creators), func(b *testing.B) {
			c := bench3Client(b)
			var seq atomic.Int64
			seq.Store(time.Now().UnixNano())
			start := time.Now()
			var wg sync.WaitGroup
			for w := range creators {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < b.N; i += creators {
						name := fmt.Sprintf("f%d", seq.Add(1))
						if _, err := c.Do(context.Background(), &MetaRequest{Op: wire.OpCreate, Ino: wire.RootIno, Name: Name(name), Mode: 0o644}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
		})
	}
}
