package chunkstore

import "context"

// SyncEachForTest makes what PutLazy wrote durable the way Sync does where
// syncfs(2) is missing or denied.
func (d *Disk) SyncEachForTest(ctx context.Context) error {
	return d.syncEach(ctx, d.lazyIDs())
}
