package fs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"shoal/cluster"
)

// Mount metrics, in the Prometheus default registry (shoal mount
// --metrics serves them).
var (
	metaSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "shoal_mount_meta_request_seconds",
		Help:    "Metadata requests the mount sent, by operation (lookup, commit, ...) and outcome (ok or error), and how long each took.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	}, []string{"op", "outcome"})
	cacheLookups = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_mount_chunk_cache_lookups_total",
		Help: "Reads of a chunk from the mount's chunk cache, by result: hit, or miss (fetched from the cluster).",
	}, []string{"result"})
	chunkBytes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_mount_chunk_bytes_total",
		Help: "Chunk bytes the mount uploaded (up) and fetched (down).",
	}, []string{"dir"})
	dirtyBytes = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "shoal_mount_dirty_bytes",
		Help: "Written bytes the mount holds in memory, not yet uploaded or uploading (bounded by --dirty-mb).",
	})
	heldOpsGauge = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "shoal_mount_held_ops",
		Help: "Unlinks, renames and rmdirs the mount has answered and metadata has not yet (held.go; --sync-names turns holding off).",
	})
	uploadSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "shoal_mount_upload_seconds",
		Help:    "Chunk uploads, by stage: wait (for one of Options.Uploads slots) and store (hash and store the chunk in the cluster), and how long each took.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
	}, []string{"stage"})
)

// observeMeta records one metadata request of op that started at start.
func observeMeta(op cluster.MetaOp, start time.Time, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	metaSeconds.WithLabelValues(op.String(), outcome).Observe(time.Since(start).Seconds())
}
