package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Workload names accepted in [Config.Workloads], in the order Run runs them.
const (
	WorkloadSeq    = "seq"
	WorkloadRandom = "random"
	WorkloadSmall  = "small"
	WorkloadTree   = "tree"
)

// AllWorkloads lists every workload name in run order.
var AllWorkloads = []string{WorkloadSeq, WorkloadRandom, WorkloadSmall, WorkloadTree}

// Units used in [Metric.Unit].
const (
	UnitMiBps   = "MiB/s"
	UnitIOPS    = "IOPS"
	UnitOpsps   = "ops/s"
	UnitSeconds = "s"
)

// Config selects and sizes the workloads. The zero value runs every
// workload at its default size; [Config.WithDefaults] shows the defaults.
type Config struct {
	// Workloads names the workloads to run (see [AllWorkloads]); empty
	// means all. They always run in the order of AllWorkloads.
	Workloads []string `json:"workloads"`

	// SeqBytes is the size of the sequential file (default 1 GiB).
	SeqBytes int64 `json:"seq_bytes"`
	// SeqBlock is the size of each sequential write and read (default 1 MiB).
	SeqBlock int `json:"seq_block"`

	// RandBytes is the size of the random-IO file (default 256 MiB).
	RandBytes int64 `json:"rand_bytes"`
	// RandOps caps the operations of each random phase (default 20000).
	RandOps int `json:"rand_ops"`
	// RandDuration caps the time of each random phase (default 20s).
	RandDuration time.Duration `json:"rand_duration_ns"`

	// SmallFiles is the number of small files (default 10000).
	SmallFiles int `json:"small_files"`
	// SmallFileBytes is the size of each small file (default 1 KiB).
	SmallFileBytes int `json:"small_file_bytes"`
	// Workers is the number of parallel workers of the small-file
	// workload (default 4).
	Workers int `json:"workers"`

	// TreeSource is the directory tree the tree workload copies
	// (default `go env GOROOT`/src).
	TreeSource string `json:"tree_source"`

	// Rounds is how many times every workload runs on every target
	// (default 1); odd rounds visit the targets in reverse order, and
	// each metric reports the median round. More rounds tame a noisy
	// machine.
	Rounds int `json:"rounds"`

	// KeepCaches skips sync and drop_caches before cold phases (for
	// callers that are not root). BeforeColdRead still runs.
	KeepCaches bool `json:"keep_caches"`

	// BeforeColdRead, if set, is called with the scratch directory before
	// each cold phase, after the kernel caches were dropped. An error
	// aborts the target's run.
	BeforeColdRead func(dir string) error `json:"-"`
}

// WithDefaults returns c with every zero field set to its default. It
// reports an error for negative sizes, unknown workload names and an
// unresolvable default TreeSource.
func (c Config) WithDefaults() (Config, error) {
	if len(c.Workloads) == 0 {
		c.Workloads = append([]string(nil), AllWorkloads...)
	}
	for _, w := range c.Workloads {
		if !validWorkload(w) {
			return c, fmt.Errorf("bench config: unknown workload %q (want one of %s)", w, strings.Join(AllWorkloads, ", "))
		}
	}
	setInt64(&c.SeqBytes, 1<<30)
	setInt(&c.SeqBlock, 1<<20)
	setInt64(&c.RandBytes, 256<<20)
	setInt(&c.RandOps, 20000)
	if c.RandDuration == 0 {
		c.RandDuration = 20 * time.Second
	}
	setInt(&c.SmallFiles, 10000)
	setInt(&c.SmallFileBytes, 1024)
	setInt(&c.Workers, 4)
	setInt(&c.Rounds, 1)
	if c.Rounds < 0 || c.SeqBytes < 0 || c.SeqBlock < 0 || c.RandBytes < 0 || c.RandOps < 0 ||
		c.RandDuration < 0 || c.SmallFiles < 0 || c.SmallFileBytes < 0 || c.Workers < 0 {
		return c, errors.New("bench config: negative size, count or duration")
	}
	if c.RandBytes < randBlock {
		return c, fmt.Errorf("bench config: rand_bytes %d below one %d-byte block", c.RandBytes, randBlock)
	}
	if c.TreeSource == "" && c.has(WorkloadTree) {
		src, err := defaultTreeSource()
		if err != nil {
			return c, err
		}
		c.TreeSource = src
	}
	return c, nil
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

func setInt64(p *int64, def int64) {
	if *p == 0 {
		*p = def
	}
}

func validWorkload(name string) bool {
	for _, w := range AllWorkloads {
		if w == name {
			return true
		}
	}
	return false
}

func (c Config) has(name string) bool {
	for _, w := range c.Workloads {
		if w == name {
			return true
		}
	}
	return false
}

// defaultTreeSource returns GOROOT/src, asking the go command first and
// falling back to the GOROOT this binary was built with.
func defaultTreeSource() (string, error) {
	root := ""
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		root = strings.TrimSpace(string(out))
	}
	if root == "" {
		root = runtime.GOROOT()
	}
	src := filepath.Join(root, "src")
	if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("bench config: default tree source: %w", err)
	}
	return src, nil
}

// Target is one directory to benchmark, named in the report by Label.
// A baseline (a local directory, a loopback mount) is one the others are
// measured against: the report sets each other target against it.
type Target struct {
	Label    string `json:"label"`
	Dir      string `json:"dir"`
	Baseline bool   `json:"baseline,omitempty"`
}

// Metric is one figure of one target.
type Metric struct {
	// Workload is the workload name ("seq", …) and Phase the measured
	// step within it ("write", "cold read", …).
	Workload string `json:"workload"`
	Phase    string `json:"phase"`
	// Unit is one of the Unit constants.
	Unit  string  `json:"unit"`
	Value float64 `json:"value"`
	// Ops counts what the phase did (bytes for MiB/s, operations for
	// IOPS and ops/s, files for seconds); Elapsed is its wall time.
	Ops     int64         `json:"ops"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Samples holds the Value of every round, in run order, when
	// [Config.Rounds] is above 1; Value is then their median and Ops
	// and Elapsed are those of the median round.
	Samples []float64 `json:"samples,omitempty"`
}

// LowerIsBetter reports whether a smaller Value means faster (true for
// durations).
func (m Metric) LowerIsBetter() bool { return m.Unit == UnitSeconds }

// Key names the metric's row: "workload phase (unit)".
func (m Metric) Key() string { return fmt.Sprintf("%s %s (%s)", m.Workload, m.Phase, m.Unit) }

// TargetResult holds the figures of one target, in run order.
type TargetResult struct {
	Target
	Metrics []Metric `json:"metrics"`
}

// Report is the outcome of [Run]: the effective configuration and one
// result per target, in the order the targets were given.
type Report struct {
	Started time.Time      `json:"started"`
	Config  Config         `json:"config"`
	Results []TargetResult `json:"results"`
	// LoadStart and LoadEnd are the 1, 5 and 15 minute load averages at
	// the start and end of the run (empty where /proc/loadavg is not
	// readable): a loaded machine makes the figures noisy.
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
}

// loadAvg returns the first three fields of /proc/loadavg, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Run runs the configured workloads on the targets and returns the
// figures. Workloads run one after another and each runs on every target
// in turn before the next starts, so that a changing background load
// touches all targets alike. Progress bars and phase notes go to progress;
// nil means quiet. Each target's work happens in a fresh scratch directory
// inside its Dir, removed at the end whether the run succeeded or not.
// The first error stops the run and is returned with the report so far;
// it names the target and the workload. Run is not safe to call
// concurrently on the same directories, and dropping caches affects the
// whole machine.
func Run(ctx context.Context, cfg Config, targets []Target, progress io.Writer) (rep *Report, err error) {
	cfg, err = cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		return nil, errors.New("bench run: no targets")
	}
	seen := map[string]bool{}
	for _, t := range targets {
		if t.Label == "" || t.Dir == "" {
			return nil, fmt.Errorf("bench run: target %+v needs a label and a directory", t)
		}
		if seen[t.Label] {
			return nil, fmt.Errorf("bench run: duplicate target label %q", t.Label)
		}
		seen[t.Label] = true
	}
	p := newProgress(progress)
	rep = &Report{Started: time.Now(), Config: cfg, Results: make([]TargetResult, len(targets)), LoadStart: loadAvg()}
	var runners []*runner
	defer func() {
		rep.LoadEnd = loadAvg()
		for _, r := range runners {
			p.notef("%s: removing scratch %s", r.target.Label, r.scratch)
			if rerr := os.RemoveAll(r.scratch); rerr != nil {
				err = errors.Join(err, fmt.Errorf("bench %s: remove scratch: %w", r.target.Label, rerr))
			}
		}
	}()
	// Each target's patterns count up from a seed of their own, drawn
	// afresh for every run (see runner.pattern).
	seeds := rand.Uint64()
	for i, t := range targets {
		rep.Results[i].Target = t
		scratch, err := os.MkdirTemp(t.Dir, "shoal-bench-")
		if err != nil {
			return rep, fmt.Errorf("bench %s: scratch dir: %w", t.Label, err)
		}
		runners = append(runners, &runner{cfg: cfg, target: t, scratch: scratch, prog: p, res: &rep.Results[i], seed: seeds + uint64(i)<<40})
	}
	steps := []struct {
		name string
		fn   func(*runner, context.Context) error
	}{
		{WorkloadSeq, (*runner).seq},
		{WorkloadRandom, (*runner).random},
		{WorkloadSmall, (*runner).small},
		{WorkloadTree, (*runner).tree},
	}
	for round := 0; round < cfg.Rounds; round++ {
		order := append([]*runner(nil), runners...)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, s := range steps {
			if !cfg.has(s.name) {
				continue
			}
			for _, r := range order {
				if err := ctx.Err(); err != nil {
					return rep, fmt.Errorf("bench %s %s: %w", r.target.Label, s.name, err)
				}
				if err := s.fn(r, ctx); err != nil {
					return rep, fmt.Errorf("bench %s %s: %w", r.target.Label, s.name, err)
				}
			}
		}
	}
	if cfg.Rounds > 1 {
		for i := range rep.Results {
			rep.Results[i].Metrics = medians(rep.Results[i].Metrics)
		}
	}
	return rep, nil
}

// medians folds the metrics of several rounds into one per key, in
// first-seen order: the median round by Value (the lower middle one for
// an even count), with every round's Value in Samples.
func medians(ms []Metric) []Metric {
	var keys []string
	byKey := map[string][]Metric{}
	for _, m := range ms {
		k := m.Key()
		if byKey[k] == nil {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], m)
	}
	out := make([]Metric, 0, len(keys))
	for _, k := range keys {
		rounds := byKey[k]
		samples := make([]float64, len(rounds))
		for i, m := range rounds {
			samples[i] = m.Value
		}
		sorted := slices.Clone(rounds)
		slices.SortStableFunc(sorted, func(a, b Metric) int { return cmp.Compare(a.Value, b.Value) })
		med := sorted[(len(sorted)-1)/2]
		med.Samples = samples
		out = append(out, med)
	}
	return out
}

// runner carries the state of one target's run.
type runner struct {
	cfg     Config
	target  Target
	scratch string
	prog    *prog
	res     *TargetResult
	seed    uint64 // the last pattern's seed (see pattern)
}

// pattern returns the data source of one phase. Every call, in every
// round and on every target, gets a seed of its own, so no phase writes
// what an earlier one wrote: a store that deduplicates chunks (shoal
// does) must not find a second round's file already stored, which would
// make its writes look as fast as hashing alone. Not safe for concurrent
// use: phases call it before their workers start.
func (r *runner) pattern() *pattern {
	r.seed++
	return newPattern(r.seed)
}

// add records a metric computed from a count and an elapsed time.
func (r *runner) add(workload, phase, unit string, ops int64, elapsed time.Duration) {
	m := Metric{Workload: workload, Phase: phase, Unit: unit, Ops: ops, Elapsed: elapsed}
	secs := elapsed.Seconds()
	if secs <= 0 {
		secs = 1e-9
	}
	switch unit {
	case UnitMiBps:
		m.Value = float64(ops) / (1 << 20) / secs
	case UnitSeconds:
		m.Value = secs
	default:
		m.Value = float64(ops) / secs
	}
	r.res.Metrics = append(r.res.Metrics, m)
	r.prog.notef("%s: %s %s: %s %s", r.target.Label, workload, phase, formatValue(m.Value), unit)
}

// cold prepares a cold phase: sync, drop the kernel caches, call the hook.
func (r *runner) cold(dir string) error {
	if !r.cfg.KeepCaches {
		if err := DropCaches(); err != nil {
			return err
		}
	}
	if r.cfg.BeforeColdRead != nil {
		if err := r.cfg.BeforeColdRead(dir); err != nil {
			return fmt.Errorf("before cold read %s: %w", dir, err)
		}
	}
	return nil
}

// DropCaches syncs all file systems and asks the kernel to drop its page,
// dentry and inode caches. It needs root.
func DropCaches() error {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return fmt.Errorf("drop caches: %w", err)
	}
	return nil
}
