package cluster

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Node metrics, in the Prometheus default registry.
var (
	metaRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_node_meta_requests_total",
		Help: "Metadata requests a node answered, by operation (lookup, commit, ...) and errno number (0 = success, 2 = ENOENT, ...).",
	}, []string{"op", "errno"})
	chunkBytes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_node_chunk_bytes_total",
		Help: "Plain chunk bytes a node received (in) and served (out).",
	}, []string{"dir"})
	chunkOps = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_node_chunk_ops_total",
		Help: "Chunk operations on a node, by kind: stored, deduplicated, served, redirected (answered with SHARDS for the reader to fetch), missing, corrupt.",
	}, []string{"kind"})
	directReads = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_client_direct_reads_total",
		Help: "Erasure-coded chunks a client (a mount) read from the nodes holding their data shards (direct), or through its node after a holder failed to serve its shard (fallback).",
	}, []string{"result"})
	gcDeleted = promauto.NewCounter(prometheus.CounterOpts{
		Name: "shoal_node_gc_deleted_chunks_total",
		Help: "Unreferenced chunks deleted by garbage collection.",
	})
	shardsRepaired = promauto.NewCounter(prometheus.CounterOpts{
		Name: "shoal_node_shards_repaired_total",
		Help: "Shards the leader rebuilt and stored on another node (repair).",
	})
	proposeSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "shoal_node_propose_seconds",
		Help:    "How long a request this node proposed to Raft took to be committed and applied.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	})
	applySeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "shoal_node_apply_seconds",
		Help:    "How long applying one committed metadata entry to this node's state took, inline chunks stored included.",
		Buckets: prometheus.ExponentialBuckets(0.000005, 2, 18),
	})
	inlineSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "shoal_node_inline_store_seconds",
		Help:    "How long storing a commit's inline chunks took before the commit was proposed.",
		Buckets: prometheus.ExponentialBuckets(0.00001, 2, 16),
	})
	storeSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "shoal_node_store_seconds",
		Help:    "How long storing one pushed chunk or shard took, by what: chunk (its shards stored on their nodes and its placement committed) or shard (on this node's disk).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
	}, []string{"what"})
	forwarded = promauto.NewCounter(prometheus.CounterOpts{
		Name: "shoal_node_forwarded_requests_total",
		Help: "Metadata requests a follower forwarded to the leader and got an answer for.",
	})

	metaSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "shoal_node_meta_request_seconds",
		Help:    "How long a node took to answer a client's metadata request, from having read it to having the answer (Raft commit included for changes), by operation.",
		Buckets: prometheus.ExponentialBuckets(0.00002, 2, 18),
	}, []string{"op"})
)

// countMeta records a metadata request answered with resp after it was
// read at start.
func countMeta(req *MetaRequest, resp *MetaResponse, start time.Time) {
	errno := uint32(0)
	if resp != nil {
		errno = resp.Errno
	}
	op := req.Op.String()
	metaRequests.WithLabelValues(op, strconv.Itoa(int(errno))).Inc()
	metaSeconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
}
