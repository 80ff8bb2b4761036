package fs

import (
	"testing"
	"time"
)

// TestDirNamesFollowSteps drives a directory's known names through the
// steps its changes report: steps that arrive out of order connect once
// the missing one comes, an aged-out list waiting for a late step is kept
// unused and trusted again when it connects, and steps that never connect
// (someone else changed the directory) make the list age out for good.
func TestDirNamesFollowSteps(t *testing.T) {
	const timeout = 50 * time.Millisecond
	const ino = 7
	k := &knownNames{timeout: timeout}
	n := func() *dirNames { return k.dirs[ino] }
	k.know(ino, map[string]struct{}{"a": {}}, 10)
	if !k.absent(ino, "x") || k.absent(ino, "a") {
		t.Fatal("a fresh listing: x should be known absent and a present")
	}

	// 10→20 comes after 20→30: the chain connects when it does.
	k.changed(ino, 20, 30)
	k.changed(ino, 10, 20)
	if n().ctime != 30 || len(n().steps) != 0 {
		t.Fatalf("after out-of-order steps: at %d with %d waiting, want at 30 with none", n().ctime, len(n().steps))
	}

	// A late step: the list ages out but is kept, then trusted again.
	k.changed(ino, 40, 50)
	time.Sleep(2 * timeout)
	if k.absent(ino, "x") {
		t.Fatal("aged-out list still answered")
	}
	if n() == nil {
		t.Fatal("aged-out list dropped although a step waits for a late one")
	}
	k.changed(ino, 30, 40)
	if !k.absent(ino, "x") {
		t.Fatal("list not trusted again once the late step connected")
	}

	// Someone else's change: this mount's steps start where it left the
	// directory, never where the chain is.
	for i := range int64(maxPendingSteps + 1) {
		k.changed(ino, 1000+i, 1001+i)
	}
	if n().ctime != 0 || n().steps != nil {
		t.Fatalf("steps that never connect: at %d with %d waiting, want the chain given up", n().ctime, len(n().steps))
	}
	time.Sleep(2 * timeout)
	if k.absent(ino, "x") || n() != nil {
		t.Fatal("a list that lost its chain should age out and be dropped")
	}
}

// TestKnownDirsBounded: past maxKnownDirs directories a new list is kept
// only in place of lists that aged out.
func TestKnownDirsBounded(t *testing.T) {
	const timeout = 50 * time.Millisecond
	k := &knownNames{timeout: timeout}
	for ino := range uint64(maxKnownDirs) {
		k.know(ino, map[string]struct{}{}, 1)
	}
	k.know(maxKnownDirs, map[string]struct{}{}, 1)
	if k.absent(maxKnownDirs, "x") {
		t.Fatal("a list past the bound was kept while every other was fresh")
	}
	if !k.absent(0, "x") {
		t.Fatal("a fresh list was dropped to make room")
	}
	time.Sleep(2 * timeout)
	k.know(maxKnownDirs, map[string]struct{}{}, 1)
	if !k.absent(maxKnownDirs, "x") {
		t.Fatal("a list was not kept although the others had aged out")
	}
	if len(k.dirs) != 1 {
		t.Fatalf("%d lists kept after the others aged out, want 1", len(k.dirs))
	}
}

// TestKnownNamesBoundedPerDir: a directory with more than maxKnownNames
// names is not known, whether a listing says so or this mount's creates
// take it there, and a listing that large replaces what was known before.
func TestKnownNamesBoundedPerDir(t *testing.T) {
	k := &knownNames{timeout: time.Minute}
	big := make(map[string]struct{}, maxKnownNames+1)
	for i := range maxKnownNames + 1 {
		big[string(rune('a'+i%26))+string(rune(i))] = struct{}{}
	}
	k.know(1, map[string]struct{}{}, 1)
	k.know(1, big, 2)
	if k.absent(1, "x") {
		t.Fatal("an older, smaller list still answers after a listing past the bound")
	}
	k.know(2, map[string]struct{}{}, 1)
	for name := range big {
		k.add(2, name)
	}
	if k.absent(2, "x") {
		t.Fatal("a list grown past the bound by creates still answers")
	}
}
