package main

import (
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"shoal/ops/status"
)

func statusCmd() *cobra.Command {
	var node string
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's nodes, their Raft roles and their disks",
		Long: `Show the cluster the node at --node belongs to: for every member its id,
wire and Raft addresses, whether it answers (up/down), its Raft role, term
and last applied log index, and its chunk store's chunk count, use and
capacity; then the leader and the number of voters. Each member is asked
directly, so a node that is down shows as down.

Under the table, the chunk health as the leader counts it (from which
members its probes find up): chunks protected (every shard on a node that
is up), degraded (some shard missing or on a node that is down, but enough
to read; repair is due) and lost (too few shards up to read until nodes
come back). Without a leader it is unknown. Needs no cluster secret.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := status.Gather(cmd.Context(), node, timeout, slog.Default())
			if err != nil {
				return err
			}
			if asJSON {
				return r.WriteJSON(os.Stdout)
			}
			return r.WriteTable(os.Stdout)
		},
	}
	cmd.Flags().StringVar(&node, "node", "127.0.0.1:7420", "wire address of a member (several, comma-separated: the first that answers)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for each node")
	return cmd
}
