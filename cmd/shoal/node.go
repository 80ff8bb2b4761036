package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"shoal/chunkstore"
	"shoal/cluster"
)

// nodeFlags are the flags of a node, shared by "node" and "up".
type nodeFlags struct {
	dataDir, listen, raftListen, id, metrics   string
	advertise, raftAdvertise, join, secretFile string
	bootstrap                                  bool
	blockSize                                  uint32
	compress                                   bool
	snapshotThreshold                          uint64
	gcInterval                                 time.Duration
	scheme                                     string
	repairInterval, repairDelay, scrubInterval time.Duration
}

func defaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".shoal"
	}
	return filepath.Join(home, ".shoal")
}

func (f *nodeFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data", defaultDataDir(), "directory for the node's Raft log, snapshots and chunks")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:7420", "address of the wire server (mounts and peers connect here)")
	fl.StringVar(&f.raftListen, "raft", "127.0.0.1:7421", "address of the Raft transport")
	fl.StringVar(&f.id, "id", "", "node id in the Raft group (default: host name and listen address)")
	fl.StringVar(&f.metrics, "metrics", "", "address to serve Prometheus metrics on, e.g. 127.0.0.1:9420 (off if empty)")
	fl.Uint32Var(&f.blockSize, "block-size", 4<<20, "block size of new files in bytes")
	fl.BoolVar(&f.compress, "compress", false, "zstd-compress chunks on disk when it saves space")
	fl.Uint64Var(&f.snapshotThreshold, "snapshot-threshold", 8192, "Raft log entries between snapshots")
	fl.DurationVar(&f.gcInterval, "gc-interval", time.Minute, "how often unreferenced chunks are deleted (negative: never)")
	fl.StringVar(&f.scheme, "ec", "", "erasure scheme of new chunks as data+parity shards, e.g. 2+1 (default: from the cluster size: 1+0 for one node, copies on two, 2+1 up to five, 4+2 from six)")
	fl.DurationVar(&f.repairInterval, "repair-interval", 30*time.Second, "how often the leader rebuilds missing shards (negative: never on its own)")
	fl.DurationVar(&f.repairDelay, "repair-delay", 5*time.Minute, "how long a node must be down before its shards are rebuilt on other nodes")
	fl.DurationVar(&f.scrubInterval, "scrub-interval", 24*time.Hour, "how often the node reads back and verifies every shard it holds (negative: never)")
	fl.StringVar(&f.advertise, "advertise", "", "address peers and mounts reach the wire server at (default: --listen)")
	fl.StringVar(&f.raftAdvertise, "raft-advertise", "", "address peers reach the Raft transport at (default: --raft)")
	fl.StringVar(&f.join, "join", "", "join the cluster of the node at this wire address (or several, comma-separated) instead of bootstrapping one; needs --secret-file")
	fl.BoolVar(&f.bootstrap, "bootstrap", true, "with a new data directory and no --join, start a new one-node cluster (false: wait for \"shoal node add\")")
	fl.StringVar(&f.secretFile, "secret-file", os.Getenv("SHOAL_SECRET_FILE"), "file holding the cluster secret (default $SHOAL_SECRET_FILE, else DATA/"+cluster.SecretFileName+", created when bootstrapping)")
}

func (f *nodeFlags) start() (*cluster.Node, error) {
	if f.blockSize < 4096 || f.blockSize > 16<<20-4096 {
		return nil, fmt.Errorf("--block-size %d: must be between 4096 and 16 MiB", f.blockSize)
	}
	var scheme chunkstore.Scheme
	if f.scheme != "" {
		var err error
		if scheme, err = chunkstore.ParseScheme(f.scheme); err != nil {
			return nil, fmt.Errorf("--ec: %w", err)
		}
	}
	secret, err := cluster.NodeSecret(f.dataDir, f.secretFile, f.join == "" && f.bootstrap)
	if err != nil {
		return nil, fmt.Errorf("cluster secret (--secret-file): %w", err)
	}
	return cluster.StartNode(cluster.NodeConfig{
		ID:                f.id,
		Advertise:         f.advertise,
		RaftAdvertise:     f.raftAdvertise,
		Join:              f.join,
		NoBootstrap:       !f.bootstrap,
		Secret:            secret,
		DataDir:           f.dataDir,
		Listen:            f.listen,
		RaftListen:        f.raftListen,
		BlockSize:         f.blockSize,
		Compress:          f.compress,
		SnapshotThreshold: f.snapshotThreshold,
		SnapshotInterval:  time.Second,
		GCInterval:        f.gcInterval,
		Scheme:            scheme,
		RepairInterval:    f.repairInterval,
		RepairDelay:       f.repairDelay,
		ScrubInterval:     f.scrubInterval,
		Logger:            slog.Default(),
	})
}

func nodeCmd() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a shoal node: Raft metadata member, chunk store and wire server",
		Long: `Run a shoal node. A new data directory bootstraps a one-node cluster
and writes a new cluster secret to DATA/` + cluster.SecretFileName + `, unless --join
names a member of an existing cluster: the node then asks it (any member;
it forwards to the leader) to add it as a voter, proving the cluster secret
of --secret-file. An existing data directory restarts the node with its
log, snapshots and chunks (--join is then ignored). The node runs until
interrupted (Ctrl-C or SIGTERM).

A three-node cluster on one machine:

  shoal node --data /tmp/a --listen 127.0.0.1:7420 --raft 127.0.0.1:7421
  shoal node --data /tmp/b --listen 127.0.0.1:7430 --raft 127.0.0.1:7431 \
      --join 127.0.0.1:7420 --secret-file /tmp/a/` + cluster.SecretFileName + `
  shoal node --data /tmp/c --listen 127.0.0.1:7440 --raft 127.0.0.1:7441 \
      --join 127.0.0.1:7420 --secret-file /tmp/a/` + cluster.SecretFileName + `
  shoal status --node 127.0.0.1:7420`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := f.start()
			if err != nil {
				return err
			}
			defer n.Close()
			stopMetrics, err := serveMetrics(f.metrics)
			if err != nil {
				return err
			}
			defer stopMetrics()
			<-cmd.Context().Done()
			slog.Info("stopping node")
			return nil
		},
	}
	f.register(cmd)
	cmd.AddCommand(nodeAddCmd(), nodeRemoveCmd(), nodeScrubCmd(), nodeRepairCmd())
	return cmd
}

// waitLeader waits until the node's Raft group has a leader.
func waitLeader(ctx context.Context, n *cluster.Node) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return n.WaitLeader(ctx)
}
