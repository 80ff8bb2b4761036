// Command shoal runs a shoal node, mounts a shoal cluster, or both at once.
//
//	shoal up MOUNTPOINT          run a one-node cluster and mount it
//	shoal node --data DIR        run a node (--join ADDR: join a cluster)
//	shoal node add|remove        change a cluster's members
//	shoal node scrub|repair      verify a node's shards, rebuild lost ones now
//	shoal status --node ADDR     show a cluster's nodes
//	shoal mount --node ADDR DIR  mount a cluster
//	shoal bench DIR...           compare file-system speed
//
// Run "shoal help COMMAND" for each command's flags.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "shoal",
		Short:         "shoal is a distributed file store you mount as a local directory",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var logLevel string
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
			return fmt.Errorf("--log-level: %w", err)
		}
		slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
		return nil
	}
	root.AddCommand(nodeCmd(), mountCmd(), upCmd(), statusCmd(), benchCmd(), loopbackCmd())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "shoal:", err)
		os.Exit(1)
	}
}
