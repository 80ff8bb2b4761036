package cluster

// This file exports where a metadata commit's time goes inside Raft.
// hashicorp/raft reports its timings through go-metrics (the armon
// package, by default); raftSink receives them and keeps the few that
// explain a commit's latency, as Prometheus histograms in seconds next to
// the node's own metrics. A commit on the leader is its own log write
// (shoal_node_raft_leader_write_seconds), then an AppendEntries round trip
// to the followers (shoal_node_raft_append_entries_seconds, per peer),
// each of which writes the entries to its log
// (shoal_node_raft_follower_write_seconds) before it answers; the entry
// is committed once a majority holds it (shoal_node_raft_commit_seconds).
// hashicorp/raft starts the followers only once the leader's write is
// done, so with three voters a commit costs two log writes one after the
// other, plus the round trip.

import (
	"strings"
	"sync"
	"time"

	metrics "github.com/armon/go-metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// raftBuckets spans a log write on a fast disk (100 µs) to a stalled
// commit (3 s).
var raftBuckets = prometheus.ExponentialBuckets(0.0001, 2, 16)

// raftHistogram registers a histogram of Raft timings in seconds.
func raftHistogram(name, help string) prometheus.Histogram {
	return promauto.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: raftBuckets})
}

var (
	raftCommitSeconds = raftHistogram("shoal_node_raft_commit_seconds",
		"On the leader: how long a log entry took from being dispatched to being committed by a majority of voters (its own log write, then the followers').")
	raftLeaderWriteSeconds = raftHistogram("shoal_node_raft_leader_write_seconds",
		"On the leader: how long writing new entries to its own Raft log (fsynced) took, before they go to the followers.")
	raftFollowerWriteSeconds = raftHistogram("shoal_node_raft_follower_write_seconds",
		"On a follower: how long writing the entries of one AppendEntries to its Raft log (fsynced) took.")
	raftAppendSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "shoal_node_raft_append_entries_seconds",
		Help:    "On the leader: how long one AppendEntries to a follower took, from sending to its answer (the follower's log write included), by follower id.",
		Buckets: raftBuckets,
	}, []string{"peer"})
)

// raftTimers maps the go-metrics keys hashicorp/raft measures to the
// histograms above; raftAppendKey, labelled with the peer, goes to
// raftAppendSeconds.
var raftTimers = map[string]prometheus.Observer{
	"raft.commitTime":                  raftCommitSeconds,
	"raft.leader.dispatchLog":          raftLeaderWriteSeconds,
	"raft.rpc.appendEntries.storeLogs": raftFollowerWriteSeconds,
}

const raftAppendKey = "raft.replication.appendEntries.rpc"

// raftSink is a go-metrics sink that observes raftTimers' samples and
// drops every other metric.
type raftSink struct{ metrics.BlackholeSink }

// AddSampleWithLabels implements metrics.MetricSink. go-metrics reports
// every timer here, in milliseconds (raftMetricsConfig).
func (*raftSink) AddSampleWithLabels(key []string, ms float32, labels []metrics.Label) {
	name := strings.Join(key, ".")
	seconds := float64(ms) / 1000
	if name == raftAppendKey {
		raftAppendSeconds.WithLabelValues(labelValue(labels, "peer_id")).Observe(seconds)
		return
	}
	if h, ok := raftTimers[name]; ok {
		h.Observe(seconds)
	}
}

// AddSample implements metrics.MetricSink.
func (s *raftSink) AddSample(key []string, ms float32) { s.AddSampleWithLabels(key, ms, nil) }

// labelValue returns the value of the label named name, or "".
func labelValue(labels []metrics.Label, name string) string {
	for _, l := range labels {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// raftMetricsConfig reports keys as hashicorp/raft names them (no service
// or host prefix) and timers in milliseconds, without the runtime
// statistics go-metrics would otherwise sample.
func raftMetricsConfig() *metrics.Config {
	cfg := metrics.DefaultConfig("")
	cfg.EnableHostname = false
	cfg.EnableHostnameLabel = false
	cfg.EnableRuntimeMetrics = false
	cfg.EnableTypePrefix = false
	cfg.TimerGranularity = time.Millisecond
	return cfg
}

var installRaftSink sync.Once

// exportRaftMetrics routes hashicorp/raft's timings to raftSink. go-metrics
// keeps one global sink per process, shared by every node in it.
func exportRaftMetrics() {
	installRaftSink.Do(func() {
		// NewGlobal fails only for a sink it cannot start; raftSink has
		// nothing to start.
		_, _ = metrics.NewGlobal(raftMetricsConfig(), &raftSink{})
	})
}
