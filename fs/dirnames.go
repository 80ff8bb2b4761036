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
//
// The mount keeps these lists by inode number, apart from the kernel's
// nodes: the kernel forgets the node of a directory whose dentry it evicts
// (under memory pressure, say, in the middle of a long copy) and looks the
// directory up anew, and every change this mount makes is recorded by
// inode number whichever node it came through, so the list stays exact.

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// maxKnownNames bounds the names a listed directory keeps known.
const maxKnownNames = 1 << 14

// maxKnownDirs bounds the directories whose names the mount keeps; past
// it, lists that aged out are dropped first, and a new list is not kept
// if none did.
const maxKnownDirs = 4096

// relistMisses is how many lookups of absent names in one directory the
// mount asks metadata before it lists the directory, to answer the next
// ones itself: a program filling a directory it did not make (tar x or
// cp into an existing tree, rsync's temporary names, mv onto new names)
// looks up one absent name per file, each a round trip otherwise. A
// directory is listed so at most once per AttrTimeout, and never again
// once it has more than maxKnownNames names.
const relistMisses = 8

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

// dirNames is what the mount knows of the names in one directory.
type dirNames struct {
	names map[string]struct{} // every name
	at    time.Time           // when names were last known complete
	// ctime is the directory's ctime when names were last known complete
	// (0: unknown); steps maps the ctimes before this mount's changes to
	// the ctimes after, for those not yet connected to ctime.
	ctime int64
	steps map[int64]int64
}

// expired reports whether d's names are of no more use: learnt timeout
// ago or more, with no change of this mount's waiting to connect.
func (d *dirNames) expired(timeout time.Duration) bool {
	return time.Since(d.at) >= timeout && len(d.steps) == 0
}

// knownNames holds the names the mount knows of directories, by inode
// number.
type knownNames struct {
	timeout time.Duration // AttrTimeout: how long a list is trusted
	mu      sync.Mutex
	dirs    map[uint64]*dirNames
	misses  map[uint64]*dirMisses // by directory inode number, at most maxKnownDirs
}

// dirMisses counts the lookups of absent names in one directory that
// metadata answered (see relistMisses).
type dirMisses struct {
	n      int       // since the directory was last listed for them
	listed time.Time // when it was
	huge   bool      // it had more than maxKnownNames names
}

// know records names as all of directory ino's names, as of now, when its
// ctime was ctime (0 if unknown).
func (k *knownNames) know(ino uint64, names map[string]struct{}, ctime int64) {
	if k.timeout <= 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(names) > maxKnownNames {
		delete(k.dirs, ino) // what was known is older than this listing
		if m := k.misses[ino]; m != nil {
			m.huge = true
		}
		return
	}
	if k.dirs == nil {
		k.dirs = make(map[uint64]*dirNames)
	}
	if _, ok := k.dirs[ino]; !ok && len(k.dirs) >= maxKnownDirs {
		for i, d := range k.dirs {
			if d.expired(k.timeout) {
				delete(k.dirs, i)
			}
		}
		if len(k.dirs) >= maxKnownDirs {
			return
		}
	}
	k.dirs[ino] = &dirNames{names: names, at: time.Now(), ctime: ctime}
}

// changed records that one of this mount's ops took directory ino's
// ctime from before to after, as of now. If that connects the ctime its
// names are exact at with the op's, the names are exact as of now.
func (k *knownNames) changed(ino uint64, before, after int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	d := k.dirs[ino]
	if d == nil || d.ctime == 0 {
		return
	}
	if d.steps == nil {
		d.steps = make(map[int64]int64)
	}
	d.steps[before] = after
	for {
		next, ok := d.steps[d.ctime]
		if !ok {
			break
		}
		delete(d.steps, d.ctime)
		d.ctime, d.at = next, time.Now()
	}
	if len(d.steps) > maxPendingSteps {
		// Someone else changed the directory: keep the names only for
		// what is left of their AttrTimeout.
		d.ctime, d.steps = 0, nil
	}
}

// absent reports whether directory ino surely lacks name: its names are
// known, less than AttrTimeout ago, and name is not among them.
func (k *knownNames) absent(ino uint64, name string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	d := k.trusted(ino)
	if d == nil {
		return false
	}
	_, ok := d.names[name]
	if !ok {
		localNegatives.Inc()
	}
	return !ok
}

// missed records that metadata answered a lookup in directory ino "no
// such name", and reports whether the mount should list the directory
// now (see relistMisses).
func (k *knownNames) missed(ino uint64) bool {
	if k.timeout <= 0 {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	m := k.misses[ino]
	if m == nil {
		if k.misses == nil || len(k.misses) >= maxKnownDirs {
			k.misses = make(map[uint64]*dirMisses)
		}
		m = &dirMisses{}
		k.misses[ino] = m
	}
	m.n++
	if m.n < relistMisses || m.huge || time.Since(m.listed) < k.timeout {
		return false
	}
	m.n, m.listed = 0, time.Now()
	return true
}

// empty reports whether directory ino surely has no names: they are
// known, less than AttrTimeout ago, and none is left.
func (k *knownNames) empty(ino uint64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	d := k.trusted(ino)
	return d != nil && len(d.names) == 0
}

// trusted returns directory ino's names if they are known and may be
// trusted now. Called with k.mu held.
func (k *knownNames) trusted(ino uint64) *dirNames {
	d := k.dirs[ino]
	if d == nil {
		return nil
	}
	if d.expired(k.timeout) {
		delete(k.dirs, ino)
		return nil
	}
	if time.Since(d.at) >= k.timeout {
		// An answer is late (a commit waiting out a Raft snapshot,
		// say): keep following, and trust the names again once it
		// connects.
		return nil
	}
	return d
}

// add records that directory ino now holds name (this mount made it). A
// directory that grows past maxKnownNames is no longer known.
func (k *knownNames) add(ino uint64, name string) {
	k.mu.Lock()
	if d := k.dirs[ino]; d != nil {
		d.names[name] = struct{}{}
		if len(d.names) > maxKnownNames {
			delete(k.dirs, ino)
		}
	}
	k.mu.Unlock()
}

// drop records that directory ino no longer holds name.
func (k *knownNames) drop(ino uint64, name string) {
	k.mu.Lock()
	if d := k.dirs[ino]; d != nil {
		delete(d.names, name)
	}
	k.mu.Unlock()
}

// forget forgets directory ino's names: an op on it failed, and the mount
// cannot tell whether it took effect.
func (k *knownNames) forget(ino uint64) {
	k.mu.Lock()
	delete(k.dirs, ino)
	k.mu.Unlock()
}
