package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// tinyConfig is a configuration small enough for unit tests. It keeps the
// kernel's caches: dropping them would evict the dentries of the other
// packages' tests running meanwhile, and some of those count lookups.
func tinyConfig(t *testing.T) Config {
	t.Helper()
	return Config{
		KeepCaches:   true,
		SeqBytes:     8 << 20,
		RandBytes:    4 << 20,
		RandOps:      500,
		RandDuration: time.Minute,
		SmallFiles:   200,
		Workers:      4,
		TreeSource:   makeTree(t),
	}
}

// makeTree builds a small source tree with nested directories, files of
// several sizes and a symlink, and returns its path.
func makeTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for d := 0; d < 3; d++ {
		dir := filepath.Join(root, fmt.Sprintf("d%d", d), "sub")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := 0; f < 10; f++ {
			data := bytes.Repeat([]byte{byte(f)}, f*1000+1)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", f)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Symlink("d0/sub/f1", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	return root
}

// wantKeys lists every metric a full run reports, in order.
var wantKeys = []string{
	"seq write (MiB/s)", "seq cold read (MiB/s)",
	"random 4k read (IOPS)", "random 4k write+fsync (IOPS)",
	"small create 1 worker (ops/s)", "small create+fsync (ops/s)", "small create (ops/s)", "small stat (ops/s)", "small read (ops/s)", "small rename (ops/s)", "small delete (ops/s)",
	"tree copy (s)", "tree read (s)", "tree remove (s)",
}

func TestRunTiny(t *testing.T) {
	cfg := tinyConfig(t)
	var mu sync.Mutex
	var hooked []string
	cfg.BeforeColdRead = func(dir string) error {
		mu.Lock()
		defer mu.Unlock()
		hooked = append(hooked, dir)
		return nil
	}
	targets := []Target{{Label: "alpha", Dir: t.TempDir()}, {Label: "beta", Dir: t.TempDir()}}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), cfg, targets, &progress)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("got %d results, want 2", len(rep.Results))
	}
	for i, res := range rep.Results {
		if res.Label != targets[i].Label {
			t.Errorf("result %d: got label %q, want %q", i, res.Label, targets[i].Label)
		}
		var keys []string
		for _, m := range res.Metrics {
			keys = append(keys, m.Key())
			if !(m.Value > 0) || m.Ops <= 0 || m.Elapsed <= 0 {
				t.Errorf("%s %s: got value %v ops %d elapsed %v, want all positive", res.Label, m.Key(), m.Value, m.Ops, m.Elapsed)
			}
		}
		if got, want := strings.Join(keys, "|"), strings.Join(wantKeys, "|"); got != want {
			t.Errorf("%s: got metrics %s, want %s", res.Label, got, want)
		}
		entries, err := os.ReadDir(targets[i].Dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Errorf("%s: got %d entries left in %s, want 0 (scratch not removed)", res.Label, len(entries), targets[i].Dir)
		}
	}
	// Cold phases: seq read, random, small stat, tree read; per target.
	if got, want := len(hooked), 8; got != want {
		t.Errorf("BeforeColdRead: got %d calls, want %d", got, want)
	}
	for _, dir := range hooked {
		if !strings.HasPrefix(dir, targets[0].Dir) && !strings.HasPrefix(dir, targets[1].Dir) {
			t.Errorf("BeforeColdRead: got dir %s, want one inside a target", dir)
		}
	}
	if progress.Len() == 0 {
		t.Error("progress: got no output, want bars and notes")
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("table:\n%s", table.String())
	for _, want := range append([]string{"alpha", "beta", "beta/alpha"}, wantKeys...) {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table: got\n%s\nwant it to contain %q", table.String(), want)
		}
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("json round trip: %v", err)
	}
	if got, want := len(back.Results), 2; got != want {
		t.Fatalf("json: got %d results, want %d", got, want)
	}
	if got, want := back.Results[1].Metrics[0], rep.Results[1].Metrics[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("json: got metric %+v, want %+v", got, want)
	}
}

func TestRunSelectsWorkloads(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.Workloads = []string{WorkloadSmall}
	cfg.SmallFiles = 10
	cfg.Rounds = 3
	rep, err := Run(context.Background(), cfg, []Target{{Label: "only", Dir: t.TempDir()}}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, m := range rep.Results[0].Metrics {
		if m.Workload != WorkloadSmall {
			t.Errorf("got metric %s, want only %s metrics", m.Key(), WorkloadSmall)
		}
		if got, want := len(m.Samples), 3; got != want {
			t.Errorf("%s: got %d samples, want %d", m.Key(), got, want)
		}
	}
	// The five phases, and the one-worker and fsyncing creates before them.
	if got, want := len(rep.Results[0].Metrics), 7; got != want {
		t.Errorf("got %d metrics, want %d", got, want)
	}
	// One worker makes the one-worker create redundant.
	cfg.Workers, cfg.Rounds = 1, 1
	rep, err = Run(context.Background(), cfg, []Target{{Label: "only", Dir: t.TempDir()}}, nil)
	if err != nil {
		t.Fatalf("Run with one worker: %v", err)
	}
	for _, m := range rep.Results[0].Metrics {
		if m.Phase == serialCreatePhase {
			t.Errorf("one worker: got metric %s, want none", m.Key())
		}
	}
	if got, want := len(rep.Results[0].Metrics), 6; got != want {
		t.Errorf("one worker: got %d metrics, want %d", got, want)
	}
}

func TestRunErrors(t *testing.T) {
	errHook := errors.New("hook failed")
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name    string
		cfg     func(*Config)
		targets []Target
		is      error
	}{
		{"no targets", nil, nil, nil},
		{"duplicate label", nil, []Target{{Label: "a", Dir: t.TempDir()}, {Label: "a", Dir: t.TempDir()}}, nil},
		{"empty label", nil, []Target{{Label: "", Dir: t.TempDir()}}, nil},
		{"missing dir", nil, []Target{{Label: "a", Dir: missing}}, os.ErrNotExist},
		{"unknown workload", func(c *Config) { c.Workloads = []string{"bogus"} }, []Target{{Label: "a", Dir: t.TempDir()}}, nil},
		{"negative size", func(c *Config) { c.SeqBytes = -1 }, []Target{{Label: "a", Dir: t.TempDir()}}, nil},
		{"hook error", func(c *Config) {
			c.Workloads = []string{WorkloadSeq}
			c.BeforeColdRead = func(string) error { return errHook }
		}, []Target{{Label: "a", Dir: t.TempDir()}}, errHook},
		{"cancelled", func(c *Config) { c.Workloads = []string{WorkloadSeq} }, []Target{{Label: "a", Dir: t.TempDir()}}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tinyConfig(t)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.name == "cancelled" {
				cancel()
			}
			_, err := Run(ctx, cfg, tt.targets, nil)
			if err == nil {
				t.Fatal("Run: got nil error, want one")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Run: got %v, want an error wrapping %v", err, tt.is)
			}
			for _, tg := range tt.targets {
				if entries, _ := os.ReadDir(tg.Dir); len(entries) != 0 {
					t.Errorf("%s: got %d entries left, want 0", tg.Dir, len(entries))
				}
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	got, err := Config{TreeSource: "/src"}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"Workloads", strings.Join(got.Workloads, ","), "seq,random,small,tree"},
		{"SeqBytes", got.SeqBytes, int64(1 << 30)},
		{"SeqBlock", got.SeqBlock, 1 << 20},
		{"RandBytes", got.RandBytes, int64(256 << 20)},
		{"RandOps", got.RandOps, 20000},
		{"RandDuration", got.RandDuration, 20 * time.Second},
		{"SmallFiles", got.SmallFiles, 10000},
		{"SmallFileBytes", got.SmallFileBytes, 1024},
		{"Workers", got.Workers, 4},
		{"Rounds", got.Rounds, 1},
		{"TreeSource", got.TreeSource, "/src"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	def, err := Config{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(def.TreeSource); err != nil || !fi.IsDir() {
		t.Errorf("default TreeSource %q: got %v, want a directory", def.TreeSource, err)
	}
}

func TestWriteTable(t *testing.T) {
	rep := &Report{Results: []TargetResult{
		{Target{Label: "local", Dir: "/a"}, []Metric{
			{Workload: "seq", Phase: "write", Unit: UnitMiBps, Value: 200},
			{Workload: "tree", Phase: "copy", Unit: UnitSeconds, Value: 2},
			{Workload: "small", Phase: "stat", Unit: UnitOpsps, Value: 10},
		}},
		{Target{Label: "shoal", Dir: "/b"}, []Metric{
			{Workload: "seq", Phase: "write", Unit: UnitMiBps, Value: 100},
			{Workload: "tree", Phase: "copy", Unit: UnitSeconds, Value: 8},
		}},
	}}
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	tests := []struct {
		line int
		want []string
	}{
		{0, []string{"metric", "local", "shoal", "shoal/local"}},
		{1, []string{"seq", "write", "(MiB/s)", "200", "100", "0.50"}},
		{2, []string{"tree", "copy", "(s)", "2.00", "8.00", "0.25"}},
		{3, []string{"small", "stat", "(ops/s)", "10.0", "-", "-"}},
	}
	for _, tt := range tests {
		if got := strings.Fields(lines[tt.line]); strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("line %d: got %q, want %q", tt.line, got, tt.want)
		}
	}
}

// TestWriteTableAgainstBaselines checks the layout with baselines: the
// values of every target in one table, then for each measured target a
// table of its speed ratios against each baseline.
func TestWriteTableAgainstBaselines(t *testing.T) {
	seq := func(v float64) Metric { return Metric{Workload: "seq", Phase: "write", Unit: UnitMiBps, Value: v} }
	tree := func(v float64) Metric { return Metric{Workload: "tree", Phase: "copy", Unit: UnitSeconds, Value: v} }
	rep := &Report{Results: []TargetResult{
		{Target{Label: "local", Dir: "/a", Baseline: true}, []Metric{seq(400), tree(2)}},
		{Target{Label: "loopback", Dir: "/b", Baseline: true}, []Metric{seq(500), tree(10)}},
		{Target{Label: "one", Dir: "/c"}, []Metric{seq(450), tree(20)}},
		{Target{Label: "three", Dir: "/d"}, []Metric{seq(250)}},
	}}
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(b.String(), "\n") {
		got = append(got, strings.Join(strings.Fields(l), " "))
	}
	want := []string{
		"metric local loopback one three",
		"seq write (MiB/s) 400 500 450 250",
		"tree copy (s) 2.00 10.0 20.0 -",
		"",
		"one against local loopback",
		"seq write (MiB/s) 1.12 0.90",
		"tree copy (s) 0.10 0.50",
		"",
		"three against local loopback",
		"seq write (MiB/s) 0.62 0.50",
		"tree copy (s) - -",
		"ratios are speed ratios: above 1 the target is faster than the one it is set against",
		"",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPatternPagesDistinct(t *testing.T) {
	p := newPattern(7)
	seen := map[string]bool{}
	buf := make([]byte, 1<<20)
	for round := 0; round < 4; round++ {
		p.fill(buf)
		for off := 0; off < len(buf); off += pageSize {
			page := string(buf[off : off+pageSize])
			if seen[page] {
				t.Fatalf("round %d page %d: got a repeated page, want all distinct", round, off/pageSize)
			}
			seen[page] = true
		}
	}
}

func TestMedians(t *testing.T) {
	m := func(phase string, v float64) Metric {
		return Metric{Workload: "w", Phase: phase, Unit: UnitIOPS, Value: v, Ops: int64(v)}
	}
	tests := []struct {
		name string
		in   []Metric
		want []Metric
	}{
		{"odd", []Metric{m("a", 5), m("b", 1), m("a", 1), m("b", 2), m("a", 3), m("b", 3)}, []Metric{
			{Workload: "w", Phase: "a", Unit: UnitIOPS, Value: 3, Ops: 3, Samples: []float64{5, 1, 3}},
			{Workload: "w", Phase: "b", Unit: UnitIOPS, Value: 2, Ops: 2, Samples: []float64{1, 2, 3}},
		}},
		{"even takes lower middle", []Metric{m("a", 4), m("a", 2)}, []Metric{
			{Workload: "w", Phase: "a", Unit: UnitIOPS, Value: 2, Ops: 2, Samples: []float64{4, 2}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := medians(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestRoundsWriteFreshData runs the sequential workload for three rounds
// on two targets and checks, before each cold read, that no 4 KiB page of
// the file was written before, in an earlier round or on the other
// target: a deduplicating store must upload every round's data again.
func TestRoundsWriteFreshData(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.Workloads = []string{WorkloadSeq}
	cfg.Rounds = 3
	seen := map[string]bool{}
	files := 0
	cfg.BeforeColdRead = func(dir string) error {
		data, err := os.ReadFile(filepath.Join(dir, "seq.dat"))
		if err != nil {
			return err
		}
		files++
		for off := 0; off+pageSize <= len(data); off += pageSize {
			page := string(data[off : off+pageSize])
			if seen[page] {
				return fmt.Errorf("file %d: page at %d was written before", files, off)
			}
			seen[page] = true
		}
		return nil
	}
	if _, err := Run(context.Background(), cfg, []Target{{Label: "alpha", Dir: t.TempDir()}, {Label: "beta", Dir: t.TempDir()}}, io.Discard); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if files != 6 {
		t.Errorf("checked %d files, want 6 (3 rounds on 2 targets)", files)
	}
}
