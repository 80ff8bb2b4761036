package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"shoal/ops/bench"
)

func benchCmd() *cobra.Command {
	var (
		cfg       bench.Config
		labels    []string
		baselines bool
		floor     bool
		jsonOut   string
	)
	cmd := &cobra.Command{
		Use:   "bench [flags] DIR...",
		Short: "Run the same file-system workloads on each directory and print the figures side by side",
		Long: `Run sequential, random, small-file and source-tree workloads on every DIR
given (a shoal mount, a local directory, another FUSE file system...) and
print a table with one column per directory and the speed ratio of the
last column to each of the others. Each workload works in a scratch
directory that is removed afterwards.

With --baselines, two columns come first: a plain local directory and
go-fuse's loopback (pass-through) file system mounted over another local
directory. Building the loopback needs the Go toolchain and
shoal's source checkout as the current directory. Each DIR then gets a
table of its own below, its speed ratio against each baseline.

On Linux 6.9 and later go-fuse's loopback runs in FUSE passthrough mode:
the kernel reads and writes its backing files directly, so its figures
for file contents are the local disk's. --fuse-floor adds a third
baseline, the same loopback with passthrough turned off and shoal's own
FUSE settings, in which every read and write crosses into the server
process as it does for a shoal mount.`,
		Example: `  shoal bench --baselines /mnt/shoal
  shoal bench --labels local,shoal --workloads seq,small /tmp/x /mnt/shoal`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(labels) > 0 && len(labels) != len(args) {
				return fmt.Errorf("--labels names %d directories, but %d were given", len(labels), len(args))
			}
			var targets []bench.Target
			if floor && !baselines {
				return fmt.Errorf("--fuse-floor needs --baselines")
			}
			if baselines {
				base, cleanup, err := benchBaselines(cmd, floor)
				if err != nil {
					return err
				}
				defer cleanup()
				targets = append(targets, base...)
			}
			for i, dir := range args {
				label := filepath.Base(dir)
				if len(labels) > 0 {
					label = labels[i]
				}
				targets = append(targets, bench.Target{Label: label, Dir: dir})
			}
			rep, err := bench.Run(cmd.Context(), cfg, targets, os.Stderr)
			if err != nil {
				return err
			}
			if err := rep.WriteTable(os.Stdout); err != nil {
				return err
			}
			if jsonOut != "" {
				f, err := os.Create(jsonOut)
				if err != nil {
					return fmt.Errorf("--json: %w", err)
				}
				defer f.Close()
				return rep.WriteJSON(f)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&labels, "labels", nil, "column names for the directories, comma-separated (default: their base names)")
	fl.BoolVar(&baselines, "baselines", false, "add a local directory and a go-fuse loopback mount as the first columns")
	fl.BoolVar(&floor, "fuse-floor", false, "with --baselines, also add go-fuse's loopback without FUSE passthrough")
	fl.StringVar(&jsonOut, "json", "", "also write the report as JSON to this file")
	fl.StringSliceVar(&cfg.Workloads, "workloads", nil, "workloads to run: "+strings.Join(bench.AllWorkloads, ",")+" (default all)")
	fl.Int64Var(&cfg.SeqBytes, "seq-bytes", 0, "size of the sequential file (default 1 GiB)")
	fl.Int64Var(&cfg.RandBytes, "rand-bytes", 0, "size of the random-IO file (default 256 MiB)")
	fl.IntVar(&cfg.SmallFiles, "small-files", 0, "number of small files (default 10000)")
	fl.IntVar(&cfg.Workers, "workers", 0, "parallel workers for small files (default 4)")
	fl.StringVar(&cfg.TreeSource, "tree", "", "source tree to copy (default $(go env GOROOT)/src)")
	fl.IntVar(&cfg.Rounds, "rounds", 0, "run each workload this many times and report the median (default 1)")
	fl.BoolVar(&cfg.KeepCaches, "keep-caches", false, "do not sync and drop the kernel's caches before cold reads (cold figures then read from memory; dropping needs root)")
	return cmd
}

// benchBaselines makes a local scratch directory and a go-fuse loopback
// mount of another one, and with floor also a mount of a third through
// "shoal loopback" (no passthrough), and returns them as targets.
func benchBaselines(cmd *cobra.Command, floor bool) ([]bench.Target, func(), error) {
	tmp, err := os.MkdirTemp("", "shoal-bench-")
	if err != nil {
		return nil, nil, err
	}
	local, orig, mnt := filepath.Join(tmp, "local"), filepath.Join(tmp, "loopback-orig"), filepath.Join(tmp, "loopback")
	floorOrig, floorMnt := filepath.Join(tmp, "floor-orig"), filepath.Join(tmp, "floor")
	for _, d := range []string{local, orig, mnt, floorOrig, floorMnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			os.RemoveAll(tmp)
			return nil, nil, err
		}
	}
	bin := filepath.Join(tmp, "loopback-bin")
	fmt.Fprintln(os.Stderr, "building go-fuse loopback for the FUSE baseline...")
	if err := bench.BuildLoopback(cmd.Context(), bin); err != nil {
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	unmount, err := bench.MountLoopback(cmd.Context(), bin, orig, mnt)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	targets := []bench.Target{{Label: "local", Dir: local, Baseline: true}, {Label: "loopback", Dir: mnt, Baseline: true}}
	unmountFloor := func() error { return nil }
	if floor {
		self, err := selfPath()
		if err == nil {
			unmountFloor, err = bench.MountServer(cmd.Context(), floorOrig, floorMnt, func(orig, mnt string) *exec.Cmd {
				return exec.Command(self, "--log-level", "warn", "loopback", orig, mnt)
			})
		}
		if err != nil {
			unmount()
			os.RemoveAll(tmp)
			return nil, nil, err
		}
		targets = append(targets, bench.Target{Label: "no-passthru", Dir: floorMnt, Baseline: true})
	}
	cleanup := func() {
		unmountFloor()
		unmount()
		os.RemoveAll(tmp)
	}
	return targets, cleanup, nil
}
