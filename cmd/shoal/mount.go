package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/spf13/cobra"

	"shoal/cluster"
	"shoal/fs"
)

// mountFlags are the flags of a mount, shared by "mount" and "up".
type mountFlags struct {
	cacheMB     int
	dirtyMB     int
	attrTimeout time.Duration
	dirAttrs    time.Duration
	syncNames   bool
	retryFor    time.Duration
	debug       bool
	metrics     string
	direct      bool
}

func (f *mountFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.cacheMB, "cache-mb", 256, "size of the in-memory chunk cache in MiB; blocks read ahead take up to a quarter of it")
	fl.IntVar(&f.dirtyMB, "dirty-mb", fs.DefaultDirtyBytes>>20, "written data held in memory before upload, all files together, in MiB; beyond it writers wait for uploads")
	fl.DurationVar(&f.attrTimeout, "attr-timeout", fs.DefaultAttrTimeout, "how long the kernel may cache attributes and names (0: not at all)")
	fl.DurationVar(&f.dirAttrs, "dir-attr-delay", fs.DefaultDirAttrDelay, "how long a directory's chmod, chown and utimens wait in the mount to go to the cluster together (0: each at once); fsync of the directory sends them at once")
	fl.BoolVar(&f.syncNames, "sync-names", false, "answer unlinks, renames and rmdirs only once the cluster has them (by default those of files not open in the mount, and of directories known empty, are answered at once and sent in the background; fsync of the directory waits for them)")
	fl.DurationVar(&f.retryFor, "retry-for", 30*time.Second, "how long to retry when the cluster cannot be reached before failing with EIO")
	fl.BoolVar(&f.debug, "fuse-debug", false, "log every FUSE request and reply to stderr, as plain lines, whatever --log-level is")
	fl.BoolVar(&f.direct, "direct-reads", true, "read the data shards of erasure-coded chunks straight from the nodes holding them, at the addresses they advertise or --node gave for them (false: every chunk through the node the mount talks to, for a mount that can reach no other)")
}

// registerMetrics adds --metrics, for the mount command alone (up serves
// the node's and the mount's metrics from its node flag).
func (f *mountFlags) registerMetrics(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.metrics, "metrics", "", "address to serve Prometheus metrics on, e.g. 127.0.0.1:9430 (off if empty)")
}

// mount mounts the cluster at addr on dir and serves it until ctx ends,
// then unmounts.
func (f *mountFlags) mount(ctx context.Context, addr, dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("mountpoint: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("mountpoint %s: not a directory", dir)
	}
	if f.cacheMB <= 0 || f.dirtyMB <= 0 {
		return fmt.Errorf("--cache-mb and --dirty-mb must be positive (got %d and %d)", f.cacheMB, f.dirtyMB)
	}
	fsOpts := fs.Options{CacheBytes: int64(f.cacheMB) << 20, DirtyBytes: int64(f.dirtyMB) << 20, Logger: slog.Default()}
	// The chunks the client fetches land in memory the cache has let go of.
	fsOpts.Buffers = fs.NewBuffers(fsOpts)
	client, err := cluster.Dial(ctx, addr, cluster.ClientConfig{Logger: slog.Default(), RetryFor: f.retryFor, Buffers: fsOpts.Buffers, DirectReads: f.direct})
	if err != nil {
		return fmt.Errorf("connect to node %s: %w", addr, err)
	}
	defer client.Close()
	timeout := f.attrTimeout
	if timeout == 0 {
		timeout = -1 // fs.Options: negative turns caching off
	}
	fsOpts.AttrTimeout, fsOpts.EntryTimeout = timeout, timeout
	fsOpts.DirAttrDelay = f.dirAttrs
	if f.dirAttrs <= 0 {
		fsOpts.DirAttrDelay = -1 // fs.Options: negative sends each at once
	}
	fsOpts.SyncNames = f.syncNames
	root := fs.New(client, client, fsOpts)
	var mo fs.MountOptions
	if f.debug {
		mo.DebugLog = log.New(os.Stderr, "fuse: ", log.LstdFlags|log.Lmicroseconds)
	}
	srv, err := fs.Mount(dir, root, mo)
	if err != nil {
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	slog.Info("mounted", "mountpoint", dir, "node", addr)
	fmt.Fprintf(os.Stderr, "shoal mounted at %s (node %s); press Ctrl-C to unmount\n", dir, addr)
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	select {
	case <-ctx.Done():
		unmount(srv, dir)
		<-done
	case <-done:
		slog.Warn("file system was unmounted from outside", "mountpoint", dir)
	}
	slog.Info("unmounted", "mountpoint", dir)
	syncCtx, cancel := context.WithTimeout(context.Background(), f.retryFor)
	defer cancel()
	if err := root.Sync(syncCtx); err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// unmount unmounts dir, detaching it lazily if programs still use it.
func unmount(srv *fuse.Server, dir string) {
	if err := srv.Unmount(); err != nil {
		slog.Warn("unmount busy, detaching lazily", "mountpoint", dir, "err", err)
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			slog.Error("lazy unmount", "mountpoint", dir, "err", err)
		}
	}
}

func mountCmd() *cobra.Command {
	var f mountFlags
	var node string
	cmd := &cobra.Command{
		Use:   "mount [flags] MOUNTPOINT",
		Short: "Mount a shoal cluster at a directory",
		Long: `Mount a shoal cluster at MOUNTPOINT (an existing directory). Writes are
buffered and become durable when a file is closed or fsynced. The mount
lasts until Ctrl-C or SIGTERM, then it is unmounted cleanly.

The mount talks to one node at a time; any member serves it (followers
forward to the Raft leader). It learns every member's address and, if its
node goes away or has no leader, moves to another, retrying operations for
--retry-for before failing with EIO.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stopMetrics, err := serveMetrics(f.metrics)
			if err != nil {
				return err
			}
			defer stopMetrics()
			return f.mount(cmd.Context(), node, args[0])
		},
	}
	cmd.Flags().StringVar(&node, "node", "127.0.0.1:7420", "address of a node of the cluster, or several, comma-separated (the mount learns the others and fails over)")
	f.register(cmd)
	f.registerMetrics(cmd)
	return cmd
}
