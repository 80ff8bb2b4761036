package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"shoal/cluster"
)

// adminFlags are the flags of the commands that change membership.
type adminFlags struct {
	node, secretFile string
	timeout          time.Duration
}

func (f *adminFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.node, "node", "127.0.0.1:7420", "wire address of any member (several, comma-separated, are tried in turn)")
	fl.StringVar(&f.secretFile, "secret-file", os.Getenv("SHOAL_SECRET_FILE"), "file holding the cluster secret (default $SHOAL_SECRET_FILE)")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to retry while the cluster has no leader")
}

// dial connects with the cluster secret, so that membership ops are allowed.
func (f *adminFlags) dial(ctx context.Context) (*cluster.Client, error) {
	return f.dialConfig(ctx, cluster.ClientConfig{RetryFor: f.timeout})
}

// dialConfig connects to --node with cfg, its Secret read from
// --secret-file and its Logger the default one.
func (f *adminFlags) dialConfig(ctx context.Context, cfg cluster.ClientConfig) (*cluster.Client, error) {
	if f.secretFile == "" {
		return nil, fmt.Errorf("--secret-file: %w", cluster.ErrNoSecret)
	}
	secret, err := cluster.ReadSecret(f.secretFile)
	if err != nil {
		return nil, err
	}
	cfg.Secret, cfg.Logger = secret, slog.Default()
	c, err := cluster.Dial(ctx, f.node, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", f.node, err)
	}
	return c, nil
}

func nodeAddCmd() *cobra.Command {
	var f adminFlags
	var nd cluster.NodeInfo
	cmd := &cobra.Command{
		Use:   "add --id ID --addr ADDR --raft ADDR",
		Short: "Add a running node to the cluster as a Raft voter",
		Long: `Add a node to the cluster as a Raft voter and record its addresses.
The node must already run without a cluster of its own: started with
--bootstrap=false on a new data directory. (A node started with --join
adds itself; this command is for adding one from elsewhere.) The change
is made by the leader; --node may name any member.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if nd.ID == "" || nd.Addr == "" || nd.RaftAddr == "" {
				return fmt.Errorf("--id, --addr and --raft are required")
			}
			c, err := f.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.AddNode(cmd.Context(), nd); err != nil {
				return err
			}
			fmt.Printf("added node %s (wire %s, raft %s)\n", nd.ID, nd.Addr, nd.RaftAddr)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&nd.ID, "id", "", "the new node's id (its --id)")
	cmd.Flags().StringVar(&nd.Addr, "addr", "", "the new node's wire address (its --listen or --advertise)")
	cmd.Flags().StringVar(&nd.RaftAddr, "raft", "", "the new node's Raft address (its --raft or --raft-advertise)")
	return cmd
}

func nodeRemoveCmd() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a node from the cluster",
		Long: `Remove node ID from the Raft voters and the cluster's records. The
node may be down. Removing the leader makes it step down once the change
is committed. The leader's next repair pass (every --repair-interval of
the nodes, or "shoal node repair") rebuilds the shards that node held on
the remaining members, from the other shards of each chunk; until then
"shoal status" counts those chunks as degraded. Remove one node at a time
and let repair finish, or chunks with more shards on the removed nodes
than the scheme's parity are lost.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.RemoveNode(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Printf("removed node %s\n", args[0])
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
