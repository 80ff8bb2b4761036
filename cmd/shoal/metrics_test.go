package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// scrape fetches http://addr/metrics and returns the value of every
// sample, keyed by its name and labels as printed.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: bad sample %q", addr, line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsEndpoints writes and reads a file through a mount and checks
// that the node's and the mount's Prometheus endpoints count it.
func TestMetricsEndpoints(t *testing.T) {
	base := t.TempDir()
	nodeMetrics, mountMetrics := freeAddr(t), freeAddr(t)
	n := startNode(t, filepath.Join(base, "data"), "--metrics", nodeMetrics)
	mnt := filepath.Join(base, "mnt")
	startMount(t, n.addr, mnt, "--metrics", mountMetrics)
	data := randomBytes(11, 6<<20)
	writeFile(t, filepath.Join(mnt, "f"), data)
	got, err := os.ReadFile(filepath.Join(mnt, "f"))
	if err != nil || len(got) != len(data) {
		t.Fatalf("read back: %d bytes, %v", len(got), err)
	}
	nm := scrape(t, nodeMetrics)
	if v := nm[`shoal_node_chunk_ops_total{kind="stored"}`]; v < 2 {
		t.Errorf("node: %v chunks stored, want at least 2 (a 6 MiB file in 4 MiB blocks)", v)
	}
	if v := nm[`shoal_node_chunk_bytes_total{dir="in"}`]; v < float64(len(data)) {
		t.Errorf("node: %v chunk bytes in, want at least %d", v, len(data))
	}
	// Raft's own timings: each commit the file's close made was written
	// to the leader's log and committed.
	for _, name := range []string{"shoal_node_raft_commit_seconds_count", "shoal_node_raft_leader_write_seconds_count"} {
		if v := nm[name]; v < 1 {
			t.Errorf("node: %s = %v, want at least 1", name, v)
		}
	}
	mm := scrape(t, mountMetrics)
	if v := mm[`shoal_mount_chunk_bytes_total{dir="up"}`]; v < float64(len(data)) {
		t.Errorf("mount: %v bytes uploaded, want at least %d", v, len(data))
	}
	if v := mm[`shoal_mount_meta_request_seconds_count{op="commit",outcome="ok"}`]; v < 1 {
		t.Errorf("mount: %v commits counted, want at least 1", v)
	}
	// Everything written was committed at close: nothing is held.
	if v, ok := mm[`shoal_mount_dirty_bytes`]; !ok || v != 0 {
		t.Errorf("mount: dirty bytes %v (reported: %v), want 0 after close", v, ok)
	}
}
