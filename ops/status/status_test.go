package status

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"shoal/chunkstore"
	"shoal/cluster"
)

// threeUp is a report of three nodes, b leading; health is the leader's.
func threeUp(health *cluster.ChunkHealth) *Report {
	return &Report{Leader: "b", Term: 4, Voters: 3, Up: 2, Health: health, Nodes: []Node{
		{ID: "a", Addr: "127.0.0.1:1", RaftAddr: "127.0.0.1:2", Voter: true, Err: "connection refused"},
		{ID: "b", Addr: "127.0.0.1:3", RaftAddr: "127.0.0.1:4", Voter: true, Up: true,
			Status: &cluster.NodeStatus{ID: "b", Role: "leader", Term: 4, Applied: 17, Chunks: 2, Bytes: 3 << 20, Capacity: 10 << 30, Available: 5 << 30, Health: health}},
		{ID: "c", Addr: "127.0.0.1:5", RaftAddr: "127.0.0.1:6", Voter: true, Up: true,
			Status: &cluster.NodeStatus{ID: "c", Role: "follower", Term: 4, Applied: 17}},
	}}
}

func TestWriteTableShowsDownNodesAndLeader(t *testing.T) {
	r := threeUp(&cluster.ChunkHealth{Protected: 120, Degraded: 3})
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"3 nodes, 2 up, 3 voters (quorum 2), leader b, term 4",
		"down", "leader", "follower", "3.0 MiB", "10.0 GiB", "a: connection refused",
		"\nchunks: 120 protected, 3 degraded, 0 lost\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q; got:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "a ") && !strings.Contains(l, "down") {
			t.Errorf("line of the unreachable node: got %q, want it marked down", l)
		}
	}
}

// TestWriteTableHealthLine checks the chunk health line under the table in
// each case: counts from the leader, no leader, a leader that has not
// counted yet.
func TestWriteTableHealthLine(t *testing.T) {
	noLeader := threeUp(nil)
	noLeader.Leader, noLeader.Nodes[1].Status.Role = "", "candidate"
	for _, tc := range []struct {
		name string
		r    *Report
		want string
	}{
		{"counts", threeUp(&cluster.ChunkHealth{Protected: 7, Degraded: 2, Lost: 1}), "chunks: 7 protected, 2 degraded, 1 lost"},
		{"all protected", threeUp(&cluster.ChunkHealth{Protected: 5}), "chunks: 5 protected, 0 degraded, 0 lost"},
		{"re-encoding", threeUp(&cluster.ChunkHealth{Protected: 5, Recoding: 2}), "chunks: 5 protected, 0 degraded, 0 lost (2 awaiting re-encoding to their scheme)"},
		{"no leader", noLeader, "chunks: unknown (no leader)"},
		{"leader not counted yet", threeUp(nil), "chunks: unknown (leader b has not probed the members yet)"},
	} {
		var buf bytes.Buffer
		if err := tc.r.WriteTable(&buf); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.HasPrefix(l, "chunks:") {
				got = append(got, l)
			}
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: chunk lines %q, want exactly [%q]; table:\n%s", tc.name, got, tc.want, buf.String())
		}
	}
}

// TestWriteJSONCarriesHealth checks that the JSON report has the leader's
// chunk counts, and null when they are unknown.
func TestWriteJSONCarriesHealth(t *testing.T) {
	for _, h := range []*cluster.ChunkHealth{{Protected: 120, Degraded: 3, Lost: 1}, nil} {
		var buf bytes.Buffer
		if err := threeUp(h).WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
			t.Fatalf("report JSON: %v\n%s", err, buf.String())
		}
		field, ok := raw["health"]
		if !ok {
			t.Fatalf("report JSON has no health field:\n%s", buf.String())
		}
		var got *cluster.ChunkHealth
		if err := json.Unmarshal(field, &got); err != nil {
			t.Fatal(err)
		}
		if (got == nil) != (h == nil) || (got != nil && *got != *h) {
			t.Errorf("health in JSON: got %s, want %+v", field, h)
		}
	}
}

// TestGatherTakesHealthFromTheLeader runs a one-node cluster in process,
// stores a chunk through it, and checks that Gather reports the leader's
// count of it.
func TestGatherTakesHealthFromTheLeader(t *testing.T) {
	nd, err := cluster.StartNode(cluster.NodeConfig{ID: "solo", DataDir: t.TempDir(), Listen: "127.0.0.1:0", RaftListen: "127.0.0.1:0", GCInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nd.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Dial(ctx, nd.Addr(), cluster.ClientConfig{RetryFor: 20 * time.Second, Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := bytes.Repeat([]byte("shoal "), 100<<10)
	if err := c.Put(ctx, chunkstore.Sum(data), data); err != nil {
		t.Fatalf("put a chunk: %v", err)
	}
	var r *Report
	for {
		if r, err = Gather(ctx, nd.Addr(), 2*time.Second, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		if r.Health != nil || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.Leader != "solo" || r.Health == nil {
		t.Fatalf("report: leader %q, health %+v; want leader solo with chunk health", r.Leader, r.Health)
	}
	if want := (cluster.ChunkHealth{Protected: 1}); *r.Health != want {
		t.Errorf("health: got %+v, want %+v", *r.Health, want)
	}
}
