package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"shoal/chunkstore"
	"shoal/wire"
)

// NodeConfig says how to run a node.
type NodeConfig struct {
	// ID names the node in the Raft group; it must be stable across
	// restarts. Default: the host name plus the listen port.
	ID string
	// DataDir holds the Raft log, the snapshots and the chunk store. It is
	// created if missing.
	DataDir string
	// Listen is the TCP address of the wire server (mounts and peers).
	Listen string
	// RaftListen is the TCP address of the Raft transport.
	RaftListen string
	// Advertise and RaftAdvertise are the addresses peers reach this node
	// at; default: the listen addresses.
	Advertise, RaftAdvertise string
	// BlockSize is the block size of new files (default 4 MiB).
	BlockSize uint32
	// Scheme is the erasure scheme of new chunks; zero picks one from the
	// cluster's size (DefaultScheme). Chunks under 64 KiB are copied whole
	// instead, as many times as the scheme has shards of parity, plus one.
	Scheme chunkstore.Scheme
	// Compress turns on zstd compression of chunks on disk.
	Compress bool
	// ReserveBytes is disk space the chunk store leaves free.
	ReserveBytes uint64
	// SnapshotThreshold is how many log entries trigger a Raft snapshot
	// (default 8192); SnapshotInterval how often that is checked.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// GCInterval is how often unreferenced chunks are collected (default 1m);
	// zero keeps the default, a negative value turns collection off.
	GCInterval time.Duration
	// PlaceGrace is how long a chunk pushed but not yet committed is kept
	// (default 1h): the collector takes it after that, and a node's sweep
	// takes stray shards no newer than that.
	PlaceGrace time.Duration
	// RepairInterval is how often the leader looks for degraded chunks and
	// rebuilds their shards (default 30s; negative: never on its own, and
	// no re-encoding of committed chunks for their directory's scheme
	// either, which otherwise follows each commit: recodeLoop).
	RepairInterval time.Duration
	// RepairDelay is how long a member must be down before the leader
	// moves the shards it holds to other nodes (default 5m); shards that
	// no node holds are rebuilt without waiting.
	RepairDelay time.Duration
	// ScrubInterval is how often the node reads back and verifies every
	// shard it holds (default 24h; negative: never).
	ScrubInterval time.Duration
	// SweepInterval is how often the node deletes stray shards (default
	// 1h; negative: never).
	SweepInterval time.Duration
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger

	// Secret is the cluster secret that members prove to each other on the
	// peer service (peer.go). Without it the node can neither forward
	// requests nor accept joins: fine for a one-node cluster only.
	Secret []byte
	// Join, if set, is the address of a member of an existing cluster (or
	// several, comma-separated): a node with a new data directory asks it
	// to be added as a voter instead of bootstrapping a cluster of its own.
	// A node that already has Raft state ignores it.
	Join string
	// NoBootstrap keeps a node with a new data directory and no Join from
	// bootstrapping a one-node cluster: it waits to be added (shoal node add).
	NoBootstrap bool
	// JoinTimeout bounds the join at start (default 1m).
	JoinTimeout time.Duration
}

// Node is one shoal server: a member of the Raft metadata group, a chunk
// store on disk and the wire server that mounts and peers talk to.
type Node struct {
	cfg   NodeConfig
	log   *slog.Logger
	store *chunkstore.Disk
	// bufs recycles the buffers chunks and shards pass through: those
	// pushed to this node, once stored, and those it read from its disk,
	// once sent.
	bufs *chunkstore.Buffers
	fsm  *fsm
	raft *raft.Raft
	// proposer groups concurrent proposals into batch entries (propose.go).
	proposer *proposer
	boltdb   *raftboltdb.BoltStore
	trans    *raft.NetworkTransport
	ln       net.Listener

	wireAddr   string // the address peers and mounts reach the wire server at
	existing   bool   // the data directory held Raft state at start
	peerMu     sync.Mutex
	peers      map[string]*Client // peer clients by wire address (forward.go)
	shardPeers map[string]*Client // shard clients by wire address (coord.go)
	down       sync.Map           // node id → time.Time until which it counts as down (coord.go)
	live       liveness           // the leader's probes of the members (repair.go)
	repairMu   sync.Mutex         // one repair pass at a time
	restored   chan struct{}      // signalled when Raft restores a snapshot (maintainLoop checks inline chunks)
	recodeQ    chan [][32]byte    // chunks committed in a directory that asks for another scheme (recodeLoop)
	chunkGate  *readGate          // chunk reads served at once, user reads first
	shardGate  *readGate          // shard reads served at once, user reads first
	grantKey   []byte             // signs and checks read grants; nil without a secret (grant.go)

	// ready is true while this node leads and has applied every entry of
	// earlier terms, so its state answers reads correctly.
	ready atomic.Bool

	stop     chan struct{}
	wg       sync.WaitGroup
	connMu   sync.Mutex
	sessions map[*wire.Session]struct{}
}

// Metadata timing: how long a proposal may wait for the Raft log.
const proposeTimeout = 30 * time.Second

// StartNode opens (or creates) the node's data directory, starts Raft and
// the wire server. A new directory bootstraps a one-node cluster, unless
// cfg.Join names a cluster to join (StartNode then returns once the
// cluster has added this node) or cfg.NoBootstrap is set. It returns once
// the server is listening; leadership may follow a moment later.
func StartNode(cfg NodeConfig) (*Node, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("start node: no data directory given")
	}
	if cfg.Listen == "" || cfg.RaftListen == "" {
		return nil, errors.New("start node: listen and raft addresses are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.GCInterval == 0 {
		cfg.GCInterval = time.Minute
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = time.Minute
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&cfg.PlaceGrace, time.Hour}, {&cfg.RepairInterval, 30 * time.Second}, {&cfg.RepairDelay, 5 * time.Minute},
		{&cfg.ScrubInterval, 24 * time.Hour}, {&cfg.SweepInterval, time.Hour},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if err := cfg.Scheme.Validate(); cfg.Scheme.Data != 0 && err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("start node: create data directory: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), sessions: map[*wire.Session]struct{}{}, peers: map[string]*Client{}, shardPeers: map[string]*Client{},
		bufs: chunkstore.NewBuffers(nodeBufferBytes), chunkGate: newReadGate(readsAtOnce), shardGate: newReadGate(readsAtOnce), restored: make(chan struct{}, 1),
		recodeQ: make(chan [][32]byte, 256), grantKey: grantKey(cfg.Secret)}
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()
	store, err := chunkstore.OpenDisk(filepath.Join(cfg.DataDir, "chunks"), chunkstore.DiskOptions{Compress: cfg.Compress, ReserveBytes: cfg.ReserveBytes, VerifiedPuts: true, Buffers: n.bufs, Log: n.log})
	if err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	n.store = store
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("start node: listen: %w", err)
	}
	n.ln = ln
	n.wireAddr = cfg.Advertise
	if n.wireAddr == "" {
		n.wireAddr = ln.Addr().String()
	}
	if err := n.startRaft(); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	n.wg.Add(1)
	go n.serve()
	if cfg.Join != "" && !n.existing {
		if err := n.joinCluster(); err != nil {
			return nil, fmt.Errorf("start node: %w", err)
		}
	}
	if cfg.GCInterval > 0 {
		n.wg.Add(1)
		go n.gcLoop()
	}
	n.wg.Add(2)
	go n.repairLoop()
	go n.maintainLoop()
	if cfg.RepairInterval > 0 {
		n.wg.Add(1)
		go n.recodeLoop()
	}
	ok = true
	n.log.Info("node started", "id", n.cfg.ID, "listen", ln.Addr().String(), "raft", cfg.RaftListen, "data", cfg.DataDir)
	return n, nil
}

// raftLogCache is how many of the newest Raft entries a node keeps in
// memory for replication. An entry holds at most one commit's inline
// chunks (wire.MaxInlineCommit), so the cache is bounded too.
const raftLogCache = 128

func (n *Node) startRaft() error {
	cfg := &n.cfg
	rc := raft.DefaultConfig()
	if cfg.ID == "" {
		host, _ := os.Hostname()
		cfg.ID = host + cfg.Listen
	}
	rc.LocalID = raft.ServerID(cfg.ID)
	// Entries that reach the leader loop together share one log write
	// (and its fsyncs); the proposer (propose.go) also groups the
	// proposals that wait for a batch in flight into one entry.
	rc.BatchApplyCh = true
	// Timings go to Prometheus (raftmetrics.go), labelled by peer; the
	// legacy copies with the peer id in the key would only be dropped.
	rc.NoLegacyTelemetry = true
	exportRaftMetrics()
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
		rc.TrailingLogs = cfg.SnapshotThreshold / 2
	}
	if cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, JSONFormat: true, Output: os.Stderr})
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return fmt.Errorf("create raft directory: %w", err)
	}
	// The log holds the small files' data (inline chunks), so it grows
	// and is truncated by many pages at each snapshot. bbolt's default
	// freelist (a sorted array, merged and written out whole on every
	// commit) then costs more than the entries; a hash-map freelist that
	// is rebuilt on open instead of stored, as etcd runs bbolt, does not.
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(raftDir, "raft.db"),
		BoltOptions: &bbolt.Options{FreelistType: bbolt.FreelistMapType, NoFreelistSync: true},
	})
	if err != nil {
		return fmt.Errorf("open raft log %s: %w", raftDir, err)
	}
	n.boltdb = bolt
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, rc.Logger)
	if err != nil {
		return fmt.Errorf("open raft snapshots: %w", err)
	}
	trans, err := newRaftTransport(cfg.RaftListen, cfg.RaftAdvertise, cfg.Secret, rc, n.log)
	if err != nil {
		return err
	}
	n.trans = trans
	existing, err := raft.HasExistingState(bolt, bolt, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	n.existing = existing
	n.fsm = newFSM(StateConfig{BlockSize: cfg.BlockSize, RequirePlaced: true}, n.store, n.log)
	n.fsm.restored = n.restored
	if cfg.RepairInterval > 0 {
		n.fsm.recode = n.queueRecode
	}
	// The newest entries stay in memory as well: replication sends each
	// entry to every follower (and the entry before it, for the
	// consistency check), which would otherwise read it back from bolt and
	// decode it again each time.
	logs, err := raft.NewLogCache(raftLogCache, bolt)
	if err != nil {
		return fmt.Errorf("raft log cache: %w", err)
	}
	r, err := raft.NewRaft(rc, n.fsm, logs, bolt, snaps, trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	n.proposer = newProposer(r.Apply, n.await)
	n.wg.Add(1)
	go n.watchLeadership()
	if !existing && cfg.Join == "" && !cfg.NoBootstrap {
		f := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("bootstrap raft: %w", err)
		}
		n.wg.Add(1)
		go n.stampRoot()
	}
	return nil
}

// watchLeadership keeps ready up to date: on becoming leader it waits for a
// barrier (every entry before it applied) before serving.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case leader := <-n.raft.LeaderCh():
			if !leader {
				n.ready.Store(false)
				n.live.forget()
				continue
			}
			if err := n.await(n.raft.Barrier(proposeTimeout)); err != nil {
				n.log.Warn("leader barrier", "err", err)
				continue
			}
			n.ready.Store(n.raft.State() == raft.Leader)
			n.log.Info("serving as leader", "term", n.raft.CurrentTerm())
			n.wg.Add(1)
			go n.recordSelf()
		}
	}
}

// errStopping is what await returns once the node is stopping.
var errStopping = fmt.Errorf("node stopping: %w", ErrNotLeader)

// await returns f's error, or errStopping once the node stops: a proposal
// or barrier queued while Raft shuts down may never be answered (its apply
// channel is buffered), so nothing may wait for one past the node's stop.
func (n *Node) await(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-n.stop:
		return errStopping
	}
}

// stampRoot gives a new cluster's root directory the time it was created.
func (n *Node) stampRoot() {
	defer n.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
	defer cancel()
	now := time.Now().UnixNano()
	req := &MetaRequest{Op: wire.OpSetAttr, Ino: wire.RootIno, Valid: wire.SetAtime | wire.SetMtime, Atime: now, Mtime: now, Now: now}
	for {
		if _, err := n.propose(ctx, req); err == nil || ctx.Err() != nil {
			return
		}
		select {
		case <-n.stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Addr returns the address the wire server listens on.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// Store returns the node's chunk store.
func (n *Node) Store() *chunkstore.Disk { return n.store }

// WaitLeader blocks until the Raft group has a leader or ctx ends.
func (n *Node) WaitLeader(ctx context.Context) error {
	for {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for raft leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Snapshot asks Raft to take a snapshot now (for tests and operators).
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// Close stops the node: the wire server, Raft and the stores. Data that was
// acknowledged is already durable; Close only releases resources.
func (n *Node) Close() error {
	select {
	case <-n.stop:
		return nil
	default:
	}
	close(n.stop)
	if n.ln != nil {
		n.ln.Close()
	}
	n.connMu.Lock()
	for s := range n.sessions {
		s.Close()
	}
	n.connMu.Unlock()
	n.closePeers()
	var errs []error
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown().Error())
	}
	n.wg.Wait()
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	if n.boltdb != nil {
		errs = append(errs, n.boltdb.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	return errors.Join(errs...)
}

// serve accepts connections and runs a wire session on each.
func (n *Node) serve() {
	defer n.wg.Done()
	for {
		conn, err := n.ln.Accept()
		if err != nil {
			select {
			case <-n.stop:
				return
			default:
			}
			n.log.Error("accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		remote := conn.RemoteAddr().String()
		s := wire.NewSession(conn, wire.SessionConfig{
			Services: []string{wire.ServiceMeta, wire.ServiceChunks, wire.ServicePeer, wire.ServiceShards},
			Logf: func(format string, args ...any) {
				n.log.Warn(fmt.Sprintf(format, args...), "peer", remote)
			},
		})
		n.connMu.Lock()
		n.sessions[s] = struct{}{}
		n.connMu.Unlock()
		n.wg.Add(1)
		go n.serveSession(s, remote)
	}
}

func (n *Node) serveSession(s *wire.Session, remote string) {
	defer n.wg.Done()
	defer func() {
		n.connMu.Lock()
		delete(n.sessions, s)
		n.connMu.Unlock()
		s.Close()
	}()
	for {
		st, err := s.Accept()
		if err != nil {
			if e := s.Err(); e != nil && !errors.Is(e, wire.ErrSessionClosed) {
				n.log.Warn("connection closed", "peer", remote, "reason", e)
			}
			return
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer st.Close()
			switch st.Service() {
			case wire.ServiceMeta:
				n.serveMeta(st, remote)
			case wire.ServiceChunks:
				n.serveChunks(st, remote)
			case wire.ServicePeer:
				n.servePeer(st, remote)
			case wire.ServiceShards:
				n.serveShards(st, remote)
			}
		}()
	}
}
