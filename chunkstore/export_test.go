package chunkstore

import "context"

// SyncEachForTest makes what PutLazy wrote durable the way Sync does where
// syncfs(2) is missing or denied.
func (d *Disk) SyncEachForTest(ctx context.Context) error {
	if err := d.packs.sync(); err != nil {
		return err
	}
	return d.syncEach(ctx, d.lazyIDs())
}

// SetPackRollForTest makes packs roll over past n bytes until the test
// ends.
func SetPackRollForTest(t interface{ Cleanup(func()) }, n int64) {
	old := packRollBytes
	packRollBytes = n
	t.Cleanup(func() { packRollBytes = old })
}
