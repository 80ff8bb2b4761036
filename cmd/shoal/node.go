package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"shoal/cluster"
)

// nodeFlags are the flags of a node, shared by "node" and "up".
type nodeFlags struct {
	dataDir, listen, raftListen, id, metrics string
	blockSize                                uint32
	compress                                 bool
	snapshotThreshold                        uint64
	gcInterval                               time.Duration
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
}

func (f *nodeFlags) start() (*cluster.Node, error) {
	if f.blockSize < 4096 || f.blockSize > 16<<20-4096 {
		return nil, fmt.Errorf("--block-size %d: must be between 4096 and 16 MiB", f.blockSize)
	}
	return cluster.StartNode(cluster.NodeConfig{
		ID:                f.id,
		DataDir:           f.dataDir,
		Listen:            f.listen,
		RaftListen:        f.raftListen,
		BlockSize:         f.blockSize,
		Compress:          f.compress,
		SnapshotThreshold: f.snapshotThreshold,
		SnapshotInterval:  time.Second,
		GCInterval:        f.gcInterval,
		Logger:            slog.Default(),
	})
}

func nodeCmd() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a shoal node: Raft metadata member, chunk store and wire server",
		Long: `Run a shoal node. A new data directory bootstraps a one-node cluster;
an existing one restarts the node with its log, snapshots and chunks.
The node runs until interrupted (Ctrl-C or SIGTERM).`,
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
	return cmd
}

// waitLeader waits until the node's Raft group has a leader.
func waitLeader(ctx context.Context, n *cluster.Node) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return n.WaitLeader(ctx)
}
