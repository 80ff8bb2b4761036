package fs

// DirtyBytesHeld reports the bytes of dirty and sealed blocks r holds, all
// files together (what Options.DirtyBytes bounds).
func DirtyBytesHeld(r *Root) int64 { return r.dirty.Load() }
