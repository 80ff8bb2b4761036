package main

import (
	"log/slog"

	"shoal/ops/metrics"
)

func serveMetrics(addr string) (stop func(), err error) { return metrics.Serve(addr, slog.Default()) }
