package cluster

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"shoal/chunkstore"
	"shoal/chunkstore/storetest"
	"shoal/wire"
)

// startTestNode runs a one-node cluster on loopback in dir.
func startTestNode(t *testing.T, dir string) *Node {
	t.Helper()
	n, err := StartNode(NodeConfig{
		ID:         "n1",
		DataDir:    dir,
		Listen:     "127.0.0.1:0",
		RaftListen: "127.0.0.1:0",
		GCInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func dialTestNode(t *testing.T, n *Node) *Client {
	t.Helper()
	c, err := Dial(context.Background(), n.Addr(), ClientConfig{RetryFor: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestClientStoreConformance runs the chunk store suite against a remote
// node through the wire: the Client is a chunkstore.Store.
func TestClientStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chunkstore.Store {
		return dialTestNode(t, startTestNode(t, t.TempDir()))
	})
}

func TestClientMetadataRoundTrip(t *testing.T) {
	n := startTestNode(t, t.TempDir())
	c := dialTestNode(t, n)
	ctx := context.Background()
	created, err := c.Do(ctx, &MetaRequest{Op: wire.OpCreate, Ino: wire.RootIno, Name: "f", Mode: syscall.S_IFREG | 0o640, Uid: 7})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("hello, chunks")
	id := chunkstore.Sum(data)
	if err := c.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpCommit, Ino: created.Attr.Ino, Size: uint64(len(data)), Blocks: []Block{{Index: 0, ID: ChunkID(id), Len: uint32(len(data))}}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Do(ctx, &MetaRequest{Op: wire.OpLookup, Ino: wire.RootIno, Name: "f"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Attr.Size != uint64(len(data)) || got.Attr.Uid != 7 || got.Attr.Mode != syscall.S_IFREG|0o640 {
		t.Errorf("lookup: got %+v, want size %d uid 7 mode %o", got.Attr, len(data), syscall.S_IFREG|0o640)
	}
	if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpLookup, Ino: wire.RootIno, Name: "nope"}); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("lookup of a missing name: got %v, want ENOENT", err)
	}
	// A commit naming a chunk the node does not have is refused with
	// EAGAIN, so metadata never points at missing data.
	ghost := chunkstore.Sum([]byte("never uploaded"))
	_, err = c.Do(ctx, &MetaRequest{Op: wire.OpCommit, Ino: created.Attr.Ino, Size: 5, Blocks: []Block{{ID: ChunkID(ghost), Len: 5}}})
	if !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("commit of a missing chunk: got %v, want EAGAIN", err)
	}
	sf, err := c.Do(ctx, &MetaRequest{Op: wire.OpStatfs})
	if err != nil {
		t.Fatal(err)
	}
	if sf.Statfs.Blocks == 0 || sf.Statfs.Bsize == 0 || sf.Statfs.Files == 0 {
		t.Errorf("statfs: got %+v, want non-zero sizes", sf.Statfs)
	}
}

// TestHostilePeer sends garbage and lying chunks: the node refuses them,
// keeps nothing wrong and goes on serving others.
func TestHostilePeer(t *testing.T) {
	n := startTestNode(t, t.TempDir())
	good := dialTestNode(t, n)

	// Garbage frames close that connection only.
	conn, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte{0xA1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 64)); err == nil {
		// The node may answer before closing; the next read must end.
		if _, err := conn.Read(make([]byte, 64)); err == nil {
			t.Error("node kept a connection that sent a malformed frame")
		}
	}
	conn.Close()

	// A chunk whose bytes do not match its id is refused with ABORT.
	conn, err = net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s := wire.NewSession(conn, wire.SessionConfig{})
	defer s.Close()
	st, err := s.Open(context.Background(), wire.ServiceChunks)
	if err != nil {
		t.Fatal(err)
	}
	lie := chunkstore.Sum([]byte("what I claim"))
	for _, m := range []wire.CasyncMessage{
		&wire.Hello{Features: wire.CasyncPushChunks},
		&wire.Index{Data: wire.EncodeIndex([]wire.IndexEntry{{ID: lie, Size: 12}})},
		&wire.IndexEOF{},
	} {
		if err := wire.WriteCasync(st, m); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := wire.ReadCasync(st); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*wire.Hello); !ok {
		t.Fatalf("got %T, want HELLO", m)
	}
	if m, err := wire.ReadCasync(st); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*wire.Request); !ok {
		t.Fatalf("got %T, want REQUEST", m)
	}
	wire.WriteCasync(st, &wire.Chunk{ID: lie, Data: []byte("what I send!")})
	m, err := wire.ReadCasync(st)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := m.(*wire.Abort); !ok || syscall.Errno(a.Errno) != syscall.EBADMSG {
		t.Fatalf("got %#v, want ABORT with EBADMSG", m)
	}
	if ok, _ := n.Store().Has(context.Background(), lie); ok {
		t.Error("node stored a chunk that does not match its id")
	}
	// The well-behaved client is unaffected.
	if _, err := good.Do(context.Background(), &MetaRequest{Op: wire.OpGetAttr, Ino: wire.RootIno}); err != nil {
		t.Errorf("good client after hostile peer: %v", err)
	}
}

// TestNodeRestartKeepsMetadata restarts a node in the same directory,
// after a snapshot and more entries, and finds everything.
func TestNodeRestartKeepsMetadata(t *testing.T) {
	dir := t.TempDir()
	n := startTestNode(t, dir)
	c := dialTestNode(t, n)
	ctx := context.Background()
	mk := func(name string) {
		if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpMkdir, Ino: wire.RootIno, Name: Name(name), Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	mk("before-snapshot")
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	mk("after-snapshot")
	c.Close()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if snaps, _ := filepath.Glob(filepath.Join(dir, "raft", "snapshots", "*")); len(snaps) == 0 {
		t.Fatal("no snapshot on disk")
	}
	n = startTestNode(t, dir)
	c = dialTestNode(t, n)
	resp, err := c.Do(ctx, &MetaRequest{Op: wire.OpReadDir, Ino: wire.RootIno})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range resp.Entries {
		names = append(names, string(e.Name))
	}
	if len(names) != 2 || names[0] != "after-snapshot" || names[1] != "before-snapshot" {
		t.Errorf("after restart: entries %v, want [after-snapshot before-snapshot]", names)
	}
}

func TestStartNodeErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	for _, cfg := range []NodeConfig{
		{Listen: "127.0.0.1:0", RaftListen: "127.0.0.1:0"},
		{DataDir: t.TempDir()},
		{DataDir: filepath.Join(file, "sub"), Listen: "127.0.0.1:0", RaftListen: "127.0.0.1:0"},
	} {
		if n, err := StartNode(cfg); err == nil {
			n.Close()
			t.Errorf("StartNode(%+v) succeeded, want an error", cfg)
		}
	}
}

// TestNodeInlineCommit commits small files whose chunks travel inside the
// commit: the node stores them, they read back through the chunk service,
// and a chunk that does not match its id, or is too big, is refused with
// EINVAL and changes nothing.
func TestNodeInlineCommit(t *testing.T) {
	n := startTestNode(t, t.TempDir())
	c := dialTestNode(t, n)
	ctx := context.Background()
	created, err := c.Do(ctx, &MetaRequest{Op: wire.OpCreate, Ino: wire.RootIno, Name: "small", Mode: syscall.S_IFREG | 0o644})
	if err != nil {
		t.Fatal(err)
	}
	ino := created.Attr.Ino
	data := []byte("a small file, committed inline")
	id := chunkstore.Sum(data)
	if _, err := c.Do(ctx, &MetaRequest{Op: wire.OpCommit, Ino: ino, Size: uint64(len(data)),
		Blocks: []Block{{Index: 0, ID: ChunkID(id), Len: uint32(len(data)), Data: data}}}); err != nil {
		t.Fatalf("inline commit: %v", err)
	}
	got, err := c.Get(ctx, id)
	if err != nil {
		t.Fatalf("get inline chunk: %v", err)
	}
	if string(got) != string(data) {
		t.Fatalf("inline chunk: got %q, want %q", got, data)
	}
	bad := []struct {
		name  string
		block Block
	}{
		{"wrong id", Block{ID: ChunkID(chunkstore.Sum([]byte("other"))), Len: 4, Data: []byte("evil")}},
		{"too big", func() Block {
			b := make([]byte, wire.MaxInlineChunk+1)
			return Block{ID: ChunkID(chunkstore.Sum(b)), Len: uint32(len(b)), Data: b}
		}()},
		{"len past data", Block{ID: ChunkID(chunkstore.Sum([]byte("ab"))), Len: 3, Data: []byte("ab")}},
	}
	for _, tt := range bad {
		_, err := c.Do(ctx, &MetaRequest{Op: wire.OpCommit, Ino: ino, Size: 1 << 20, Blocks: []Block{tt.block}})
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s: got %v, want EINVAL", tt.name, err)
		}
		if ok, _ := n.Store().Has(ctx, chunkstore.ID(tt.block.ID)); ok {
			t.Errorf("%s: the refused chunk was stored", tt.name)
		}
	}
	l, err := c.Do(ctx, &MetaRequest{Op: wire.OpLayout, Ino: ino})
	if err != nil {
		t.Fatal(err)
	}
	if l.Layout.Size != uint64(len(data)) || len(l.Layout.Blocks) != 1 || chunkstore.ID(l.Layout.Blocks[0].ID) != id || l.Layout.Blocks[0].Data != nil {
		t.Fatalf("layout after refused commits: got %+v, want the one inline block (without data)", l.Layout)
	}
}
