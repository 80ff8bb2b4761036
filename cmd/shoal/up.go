package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

func upCmd() *cobra.Command {
	var nf nodeFlags
	var mf mountFlags
	cmd := &cobra.Command{
		Use:   "up [flags] MOUNTPOINT",
		Short: "Run a one-node local cluster and mount it at MOUNTPOINT",
		Long: `Run a node (data under --data, default ~/.shoal) and mount it at
MOUNTPOINT, created if missing, in one process. Ctrl-C or SIGTERM unmounts
cleanly and stops the node. Running it again later brings back the same
files.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("create mountpoint: %w", err)
			}
			n, err := nf.start()
			if err != nil {
				return err
			}
			defer n.Close()
			if err := waitLeader(cmd.Context(), n); err != nil {
				return err
			}
			stopMetrics, err := serveMetrics(nf.metrics)
			if err != nil {
				return err
			}
			defer stopMetrics()
			err = mf.mount(cmd.Context(), n.Addr(), dir)
			slog.Info("stopping node")
			return err
		},
	}
	nf.register(cmd)
	mf.register(cmd)
	return cmd
}
