package cluster

import (
	"context"
	"testing"

	metrics "github.com/armon/go-metrics"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// observed returns how many samples histogram o holds and their sum.
func observed(t *testing.T, o prometheus.Observer) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatalf("read histogram: %v", err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// TestRaftSinkMapsTimers feeds the sink the samples hashicorp/raft sends
// it and checks each lands, in seconds, in its histogram, and that other
// metrics are dropped.
func TestRaftSinkMapsTimers(t *testing.T) {
	s := &raftSink{}
	for _, c := range []struct {
		key    []string
		labels []metrics.Label
		hist   prometheus.Observer
	}{
		{[]string{"raft", "commitTime"}, nil, raftCommitSeconds},
		{[]string{"raft", "leader", "dispatchLog"}, nil, raftLeaderWriteSeconds},
		{[]string{"raft", "rpc", "appendEntries", "storeLogs"}, nil, raftFollowerWriteSeconds},
		{[]string{"raft", "replication", "appendEntries", "rpc"}, []metrics.Label{{Name: "peer_id", Value: "sink-test-peer"}}, raftAppendSeconds.WithLabelValues("sink-test-peer")},
	} {
		n0, sum0 := observed(t, c.hist)
		s.AddSampleWithLabels(c.key, 2.5, c.labels)
		n, sum := observed(t, c.hist)
		if n != n0+1 || sum-sum0 < 0.0024 || sum-sum0 > 0.0026 {
			t.Errorf("%v: histogram went from %d samples (sum %g) to %d (sum %g), want one more of 0.0025 s", c.key, n0, sum0, n, sum)
		}
	}
	// Unmapped keys, gauges and counters change nothing and do not panic.
	n0, _ := observed(t, raftCommitSeconds)
	s.AddSample([]string{"raft", "fsm", "apply"}, 1)
	s.AddSampleWithLabels([]string{"raft", "commitTime", "extra"}, 1, nil)
	s.SetGauge([]string{"raft", "commitTime"}, 1)
	s.IncrCounter([]string{"raft", "commitTime"}, 1)
	if n, _ := observed(t, raftCommitSeconds); n != n0 {
		t.Errorf("commit histogram: %d samples after unrelated metrics, want %d", n, n0)
	}
}

// TestRaftMetricsFromCluster checks that a write on a real three-node
// cluster shows in the Raft histograms: the leader's write and commit,
// an AppendEntries to a follower and the follower's log write.
func TestRaftMetricsFromCluster(t *testing.T) {
	tc := startCluster(t, 3)
	leader := tc.waitLeader()
	follower := tc.cfgs[(leader+1)%3].ID
	commit0, _ := observed(t, raftCommitSeconds)
	lead0, _ := observed(t, raftLeaderWriteSeconds)
	foll0, _ := observed(t, raftFollowerWriteSeconds)
	app0, _ := observed(t, raftAppendSeconds.WithLabelValues(follower))
	if err := mkdir(context.Background(), tc.nodes[leader], "metered"); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	waitUntil(t, "the follower's log write to be measured", func() bool {
		n, _ := observed(t, raftFollowerWriteSeconds)
		return n > foll0
	})
	waitUntil(t, "an AppendEntries to "+follower+" to be measured", func() bool {
		n, _ := observed(t, raftAppendSeconds.WithLabelValues(follower))
		return n > app0
	})
	if n, sum := observed(t, raftCommitSeconds); n <= commit0 || sum <= 0 {
		t.Errorf("commit histogram: %d samples (sum %g s), want more than %d after a mkdir", n, sum, commit0)
	}
	if n, _ := observed(t, raftLeaderWriteSeconds); n <= lead0 {
		t.Errorf("leader write histogram: %d samples, want more than %d after a mkdir", n, lead0)
	}
}
