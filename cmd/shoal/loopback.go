package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/spf13/cobra"

	"shoal/fs"
)

// loopbackCmd is the hidden "shoal loopback" command: go-fuse's loopback
// file system with FUSE passthrough turned off, the baseline "shoal bench
// --fuse-floor" adds. With passthrough (go-fuse's example, on Linux 6.9
// and later) the kernel reads and writes the backing files itself and the
// server never sees the data; without it every read and write crosses
// into the server process, as it does for shoal's mount.
func loopbackCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "loopback ORIG MOUNTPOINT",
		Short:  "Serve directory ORIG at MOUNTPOINT through go-fuse's loopback without passthrough (a benchmark baseline)",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			orig, dir := args[0], args[1]
			root, err := gofs.NewLoopbackRoot(orig)
			if err != nil {
				return fmt.Errorf("loopback %s: %w", orig, err)
			}
			// The FUSE settings of shoal's own mount (fs.Mount, with its
			// read-ahead window and a default mount's cache times), so
			// that the two differ only in what the server does with the
			// data. Without the times, go-fuse would let the kernel cache
			// no attribute or name at all, and every stat would cross.
			cacheFor, noNegative := fs.DefaultAttrTimeout, time.Duration(0)
			srv, err := gofs.Mount(dir, root, &gofs.Options{
				AttrTimeout:     &cacheFor,
				EntryTimeout:    &cacheFor,
				NegativeTimeout: &noNegative,
				MountOptions: fuse.MountOptions{
					AllowOther:        true,
					Options:           []string{"default_permissions"},
					FsName:            orig,
					Name:              "loopback",
					DirectMount:       true,
					DirectMountStrict: true,
					MaxWrite:          1 << 20,
					MaxReadAhead:      1 << 20,
					MaxBackground:     64,
					DisableSplice:     true,
					// Every read and write goes through this process.
					DisabledCapabilities: fuse.CAP_PASSTHROUGH,
				},
				NullPermissions: true,
			})
			if err != nil {
				return fmt.Errorf("mount loopback at %s: %w", dir, err)
			}
			if err := fs.RaiseReadAhead(dir); err != nil {
				slog.Debug("loopback", "err", err)
			}
			done := make(chan struct{})
			go func() { srv.Wait(); close(done) }()
			select {
			case <-cmd.Context().Done():
				unmount(srv, dir)
				<-done
			case <-done:
			}
			slog.Debug("loopback unmounted", "mountpoint", dir)
			return nil
		},
	}
}

// selfPath is the path of the running shoal binary.
func selfPath() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the shoal binary: %w", err)
	}
	return p, nil
}
