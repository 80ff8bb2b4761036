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

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// maxKnownNames bounds the names a listed directory keeps known.
const maxKnownNames = 1 << 14

var localNegatives = promauto.NewCounter(prometheus.CounterOpts{
	Name: "shoal_mount_local_negative_lookups_total",
	Help: "Lookups of absent names the mount answered itself, from a directory listing it knew complete.",
})

// knowNames records names as all of directory n's names, as of now.
func (n *node) knowNames(names map[string]struct{}) {
	if n.r.opts.AttrTimeout <= 0 || len(names) > maxKnownNames {
		return
	}
	n.mu.Lock()
	n.names, n.namesAt = names, time.Now()
	n.mu.Unlock()
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
		n.names = nil
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
	n.names = nil
	n.mu.Unlock()
}
