package fs

// DirtyBytesHeld reports the bytes of dirty and sealed blocks r holds, all
// files together (what Options.DirtyBytes bounds).
func DirtyBytesHeld(r *Root) int64 { return r.dirty.Load() }

// OpenFiles reports how many files r holds open.
func OpenFiles(r *Root) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, f := range r.files {
		if f.opens > 0 {
			n++
		}
	}
	return n
}
