package bench

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"testing"
)

// TestBaseline runs the full default benchmark on a local directory and on
// a go-fuse loopback mount of another, and logs the table and the JSON.
// It takes minutes, so it runs only when SHOAL_BENCH_BASELINE is set;
// SHOAL_BENCH_ROUNDS sets [Config.Rounds]:
//
//	SHOAL_BENCH_BASELINE=1 SHOAL_BENCH_ROUNDS=3 go test -run TestBaseline -v -timeout 60m ./ops/bench/
func TestBaseline(t *testing.T) {
	if os.Getenv("SHOAL_BENCH_BASELINE") == "" {
		t.Skip("set SHOAL_BENCH_BASELINE=1 to run the full baseline benchmark")
	}
	var cfg Config
	if r := os.Getenv("SHOAL_BENCH_ROUNDS"); r != "" {
		n, err := strconv.Atoi(r)
		if err != nil {
			t.Fatalf("SHOAL_BENCH_ROUNDS=%q: %v", r, err)
		}
		cfg.Rounds = n
	}
	mnt := mountLoopback(t, t.TempDir())
	targets := []Target{{Label: "local", Dir: t.TempDir()}, {Label: "loopback", Dir: mnt}}
	rep, err := Run(context.Background(), cfg, targets, os.Stderr)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("baseline:\n%s", out.String())
}
