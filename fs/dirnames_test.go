package fs

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"shoal/chunkstore"
)

// TestDirNamesFollowSteps drives a directory's known names through the
// steps its changes report: steps that arrive out of order connect once
// the missing one comes, an aged-out list waiting for a late step is kept
// unused and trusted again when it connects, and steps that never connect
// (someone else changed the directory) make the list age out for good.
func TestDirNamesFollowSteps(t *testing.T) {
	const timeout = 50 * time.Millisecond
	r := New(nil, chunkstore.NewMemory(), Options{AttrTimeout: timeout, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	n := &node{r: r}
	n.knowNames(map[string]struct{}{"a": {}}, 10)
	if !n.knownAbsent("x") || n.knownAbsent("a") {
		t.Fatal("a fresh listing: x should be known absent and a present")
	}

	// 10→20 comes after 20→30: the chain connects when it does.
	n.changedDir(20, 30)
	n.changedDir(10, 20)
	if n.namesCtime != 30 || len(n.namesSteps) != 0 {
		t.Fatalf("after out-of-order steps: at %d with %d waiting, want at 30 with none", n.namesCtime, len(n.namesSteps))
	}

	// A late step: the list ages out but is kept, then trusted again.
	n.changedDir(40, 50)
	time.Sleep(2 * timeout)
	if n.knownAbsent("x") {
		t.Fatal("aged-out list still answered")
	}
	if n.names == nil {
		t.Fatal("aged-out list dropped although a step waits for a late one")
	}
	n.changedDir(30, 40)
	if !n.knownAbsent("x") {
		t.Fatal("list not trusted again once the late step connected")
	}

	// Someone else's change: this mount's steps start where it left the
	// directory, never where the chain is.
	for i := range int64(maxPendingSteps + 1) {
		n.changedDir(1000+i, 1001+i)
	}
	if n.namesCtime != 0 || n.namesSteps != nil {
		t.Fatalf("steps that never connect: at %d with %d waiting, want the chain given up", n.namesCtime, len(n.namesSteps))
	}
	time.Sleep(2 * timeout)
	if n.knownAbsent("x") || n.names != nil {
		t.Fatal("a list that lost its chain should age out and be dropped")
	}
}
