package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"shoal/cluster"
)

// maintFlags are the flags of the commands that run maintenance now
// rather than at its interval: "node scrub" and "node repair".
type maintFlags struct {
	adminFlags
	// run bounds the operation itself: a scrub reads every shard of the
	// node, a repair pass rebuilds up to thousands of them.
	run time.Duration
}

func (f *maintFlags) register(cmd *cobra.Command) {
	f.adminFlags.register(cmd)
	cmd.Flags().DurationVar(&f.run, "run-timeout", 30*time.Minute, "how long the operation itself may run before the command gives up")
}

// dialLong connects with the cluster secret and timeouts long enough for
// the operation: one attempt may take --run-timeout (a shorter one would be
// abandoned and tried again while the node still works on the first).
func (f *maintFlags) dialLong(ctx context.Context, pin bool) (*cluster.Client, error) {
	return f.dialConfig(ctx, cluster.ClientConfig{RetryFor: f.timeout, OpTimeout: f.run, MetaTimeout: f.run, Pin: pin})
}

// scrubResult is what "shoal node scrub --json" prints.
type scrubResult struct {
	Node string `json:"node"`
	Addr string `json:"addr"`
	cluster.ScrubReport
}

func nodeScrubCmd() *cobra.Command {
	var f maintFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "scrub --node ADDR",
		Short: "Verify every shard a node holds, now",
		Long: `Make the node at --node scrub now, as it does every --scrub-interval: read
back every shard the cluster's placements say it holds and verify its
checksums. Each shard found missing or corrupt (a corrupt file is moved to
the store's quarantine directory) is reported lost, so that the leader's
next repair pass rebuilds it from the other shards; reads meanwhile rebuild
the chunk from parity. Prints how many shards were checked, missing and
corrupt.

--node names the one node to scrub (a scrub is never forwarded); the
command needs the cluster secret (--secret-file).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.Contains(f.node, ",") {
				return fmt.Errorf("--node %s: name the one node to scrub", f.node)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout+f.run)
			defer cancel()
			c, err := f.dialLong(ctx, true)
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := c.NodeStatus(ctx)
			if err != nil {
				return fmt.Errorf("scrub node %s: %w", f.node, err)
			}
			rep, err := c.Scrub(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(scrubResult{Node: st.ID, Addr: f.node, ScrubReport: *rep})
			}
			fmt.Printf("scrubbed node %s (%s): %d shards checked, %d missing, %d corrupt\n", st.ID, f.node, rep.Checked, rep.Missing, rep.Corrupt)
			if rep.Refetched > 0 {
				fmt.Printf("%d inline chunks were copied again from other nodes\n", rep.Refetched)
			}
			if rep.Missing+rep.Corrupt > rep.Refetched {
				fmt.Println("the missing and corrupt shards are reported lost: the leader's next repair pass rebuilds them")
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().Lookup("node").Usage = "wire address of the node to scrub (one address)"
	cmd.Flags().Lookup("timeout").Usage = "how long to retry while the node cannot be reached"
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a sentence")
	return cmd
}

func nodeRepairCmd() *cobra.Command {
	var f maintFlags
	cmd := &cobra.Command{
		Use:   "repair --node ADDR",
		Short: "Run a repair pass now",
		Long: `Make the leader run a repair pass now, as it does every --repair-interval:
for each chunk with a shard that no node holds (lost, found corrupt, or
never stored because a node was down when the chunk was written), or whose
holder has been down longer than --repair-delay, read the chunk, rebuild
the shard and store it on a node that is up and holds nothing else of the
chunk. A shard waits for a node to come back when every node that is up
holds one already. Prints how many shards were rebuilt.

--node may name any member (it passes the request to the leader); the
command needs the cluster secret (--secret-file).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout+f.run)
			defer cancel()
			c, err := f.dialLong(ctx, false)
			if err != nil {
				return err
			}
			defer c.Close()
			n, err := c.Repair(ctx)
			if err != nil {
				return err
			}
			fmt.Printf("repair pass: %d shards rebuilt\n", n)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
