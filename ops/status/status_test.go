package status

import (
	"bytes"
	"strings"
	"testing"

	"shoal/cluster"
)

func TestWriteTableShowsDownNodesAndLeader(t *testing.T) {
	r := &Report{Leader: "b", Term: 4, Voters: 3, Up: 2, Nodes: []Node{
		{ID: "a", Addr: "127.0.0.1:1", RaftAddr: "127.0.0.1:2", Voter: true, Err: "connection refused"},
		{ID: "b", Addr: "127.0.0.1:3", RaftAddr: "127.0.0.1:4", Voter: true, Up: true,
			Status: &cluster.NodeStatus{ID: "b", Role: "leader", Term: 4, Applied: 17, Chunks: 2, Bytes: 3 << 20, Capacity: 10 << 30, Available: 5 << 30}},
		{ID: "c", Addr: "127.0.0.1:5", RaftAddr: "127.0.0.1:6", Voter: true, Up: true,
			Status: &cluster.NodeStatus{ID: "c", Role: "follower", Term: 4, Applied: 17}},
	}}
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"3 nodes, 2 up, 3 voters (quorum 2), leader b, term 4",
		"down", "leader", "follower", "3.0 MiB", "10.0 GiB", "a: connection refused",
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
