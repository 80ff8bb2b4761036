package fs

// This file holds the mount's knowledge of the names in a directory. Before
// every create the kernel asks whether the name exists (LOOKUP), one
// round trip per file of "cp -r" or "tar x" that is answered "no" almost
// every time. A directory this mount has just made is known to be empty,
// and one it has just listed is known completely; the mount keeps that
// list up to date with its own creates, links, renames and removals, and
// answers a lookup of a name not in it with ENOENT itself, for
// AttrTimeout after it learnt the list: the time the kernel would have
// cached a negative answer anyway. A name another mount creates meanwhile
// shows up as late as it would through that cache.
//
// A directory this mount keeps filling stays known past that: the answer
// to each of its changes says what the directory's ctime was before
// (MetaResponse.DirBefore) and became (Dir.Ctime). The mount knows the
// ctime its list was exact at (from the listing or the mkdir) and follows
// these steps from it; each step that connects proves that nobody else
// changed the directory up to then, and restarts the AttrTimeout. A change
// by another mount leaves a gap the steps never bridge, so the list ages
// out as before. Answers can arrive out of order, or late, so steps that
// do not connect yet wait (up to maxPendingSteps, beyond which the list
// is taken to be stale); while some wait, an aged-out list is kept, not
// used, and trusted again once they connect.

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// maxKnownNames bounds the names a listed directory keeps known.
const maxKnownNames = 1 << 14

// maxPendingSteps bounds the directory changes kept waiting for the one
// before them (see above). An answer can be late by many others: its
// goroutine descheduled for milliseconds while the rest go on at
// thousands per second. The bound only frees the memory of a chain that
// another mount's change broke; the list stops being trusted AttrTimeout
// after its chain last connected in any case.
const maxPendingSteps = 1024

var localNegatives = promauto.NewCounter(prometheus.CounterOpts{
	Name: "shoal_mount_local_negative_lookups_total",
	Help: "Lookups of absent names the mount answered itself, from a directory listing it knew complete.",
})

// knowNames records names as all of directory n's names, as of now,
// when its ctime was ctime (0 if unknown).
func (n *node) knowNames(names map[string]struct{}, ctime int64) {
	if n.r.opts.AttrTimeout <= 0 || len(names) > maxKnownNames {
		return
	}
	n.mu.Lock()
	n.names, n.namesAt, n.namesCtime, n.namesSteps = names, time.Now(), ctime, nil
	n.mu.Unlock()
}

// changedDir records that one of this mount's ops took directory n's
// ctime from before to after, as of now. If that connects the ctime n's
// names are exact at with the op's, the names are exact as of now.
func (n *node) changedDir(before, after int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.names == nil || n.namesCtime == 0 {
		return
	}
	if n.namesSteps == nil {
		n.namesSteps = make(map[int64]int64)
	}
	n.namesSteps[before] = after
	for {
		next, ok := n.namesSteps[n.namesCtime]
		if !ok {
			break
		}
		delete(n.namesSteps, n.namesCtime)
		n.namesCtime, n.namesAt = next, time.Now()
	}
	if len(n.namesSteps) > maxPendingSteps {
		// Someone else changed the directory: keep the names only for
		// what is left of their AttrTimeout.
		n.namesCtime, n.namesSteps = 0, nil
	}
}

// knownAbsent reports whether directory n surely lacks name: its names
// are known, less than AttrTimeout ago, and name is not among them.
func (n *node) knownAbsent(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.names == nil {
		return false
	}
	if time.Since(n.namesAt) >= n.r.opts.AttrTimeout {
		if len(n.namesSteps) == 0 {
			n.names, n.namesCtime = nil, 0
		}
		// Else an answer is late (a commit waiting out a Raft
		// snapshot, say): keep following, and trust the names again
		// once it connects.
		return false
	}
	_, ok := n.names[name]
	if !ok {
		localNegatives.Inc()
	}
	return !ok
}

// addName records that directory n now holds name (this mount made it).
func (n *node) addName(name string) {
	n.mu.Lock()
	if n.names != nil {
		n.names[name] = struct{}{}
	}
	n.mu.Unlock()
}

// dropName records that directory n no longer holds name.
func (n *node) dropName(name string) {
	n.mu.Lock()
	if n.names != nil {
		delete(n.names, name)
	}
	n.mu.Unlock()
}

// forgetNames forgets directory n's names: an op on it failed, and the
// mount cannot tell whether it took effect.
func (n *node) forgetNames() {
	n.mu.Lock()
	n.names, n.namesCtime, n.namesSteps = nil, 0, nil
	n.mu.Unlock()
}
