package chunkstore

import "context"

// SyncEachForTest makes what PutLazy wrote durable the way Sync does where
// the kernel lacks syncfs(2).
func (d *Disk) SyncEachForTest(ctx context.Context) error {
	d.lazyMu.Lock()
	ids := make([]ID, 0, len(d.lazy))
	for id := range d.lazy {
		ids = append(ids, id)
	}
	d.lazyMu.Unlock()
	return d.syncEach(ctx, ids)
}
