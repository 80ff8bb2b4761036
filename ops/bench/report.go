package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable writes the report as a table: one row per metric, one column
// per target headed by its label. Without baselines among the targets,
// columns follow for the last target against each other one, headed
// "last/other", with the speed ratio of the two. With baselines, each
// other target gets a table of its own below, its speed ratio against
// each baseline. A speed ratio above 1 means the target was faster than
// the one it is set against; for durations it is theirs/its, for rates
// its/theirs. Missing figures print as "-". A last line gives the load
// averages, when known.
func (r *Report) WriteTable(w io.Writer) error {
	keys, byKey := r.index()
	var all, bases, measured []int
	for i, res := range r.Results {
		all = append(all, i)
		if res.Baseline {
			bases = append(bases, i)
		} else {
			measured = append(measured, i)
		}
	}
	var pairs [][2]int // target, the one it is set against
	if n := len(all); len(bases) == 0 && n > 1 {
		for _, i := range all[:n-1] {
			pairs = append(pairs, [2]int{n - 1, i})
		}
	}
	if err := r.writeTable(w, keys, byKey, "metric", all, pairs); err != nil {
		return err
	}
	if len(bases) > 0 { // else the main table set the last target against the others
		for _, t := range measured {
			if err := r.writeAgainstBaselines(w, keys, byKey, t, bases); err != nil {
				return err
			}
		}
	}
	if len(pairs) > 0 || len(bases) > 0 && len(measured) > 0 {
		if _, err := fmt.Fprintln(w, "ratios are speed ratios: above 1 the target is faster than the one it is set against"); err != nil {
			return fmt.Errorf("bench write table: %w", err)
		}
	}
	if r.LoadStart != "" || r.LoadEnd != "" {
		if _, err := fmt.Fprintf(w, "load average: start %s, end %s\n", r.LoadStart, r.LoadEnd); err != nil {
			return fmt.Errorf("bench write table: %w", err)
		}
	}
	return nil
}

// writeTable writes one table: a row per metric key, headed first, with
// the values of the targets in cols, then a column per pair with the
// speed ratio of its first target against its second, headed "a/b", or
// just "b" when there are no value columns (the heading names a).
func (r *Report) writeTable(w io.Writer, keys []string, byKey map[string]map[int]Metric, first string, cols []int, pairs [][2]int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	// Pad the metric names so they stay left-aligned in a right-aligned table.
	width := len(first)
	for _, k := range keys {
		width = max(width, len(k))
	}
	fmt.Fprintf(tw, "%-*s\t", width, first)
	for _, i := range cols {
		fmt.Fprintf(tw, "%s\t", r.Results[i].Label)
	}
	for _, p := range pairs {
		if len(cols) == 0 {
			fmt.Fprintf(tw, "%s\t", r.Results[p[1]].Label)
		} else {
			fmt.Fprintf(tw, "%s/%s\t", r.Results[p[0]].Label, r.Results[p[1]].Label)
		}
	}
	fmt.Fprintln(tw)
	for _, k := range keys {
		row := byKey[k]
		fmt.Fprintf(tw, "%-*s\t", width, k)
		for _, i := range cols {
			if m, ok := row[i]; ok {
				fmt.Fprintf(tw, "%s\t", formatValue(m.Value))
			} else {
				fmt.Fprint(tw, "-\t")
			}
		}
		for _, p := range pairs {
			a, aok := row[p[0]]
			b, bok := row[p[1]]
			if !aok || !bok {
				fmt.Fprint(tw, "-\t")
				continue
			}
			fmt.Fprintf(tw, "%.2f\t", SpeedRatio(a, b))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench write table: %w", err)
	}
	return nil
}

// index returns the metric keys in first-seen order and, per key, each
// target's metric by target index.
func (r *Report) index() ([]string, map[string]map[int]Metric) {
	var keys []string
	byKey := map[string]map[int]Metric{}
	for i, res := range r.Results {
		for _, m := range res.Metrics {
			k := m.Key()
			if byKey[k] == nil {
				byKey[k] = map[int]Metric{}
				keys = append(keys, k)
			}
			byKey[k][i] = m
		}
	}
	return keys, byKey
}

// SpeedRatio returns how many times faster a was than b on the same
// metric: a/b for rates, b/a for durations. It returns 0 when the
// divisor is zero.
func SpeedRatio(a, b Metric) float64 {
	num, den := a.Value, b.Value
	if a.LowerIsBetter() {
		num, den = den, num
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// formatValue prints with about three significant digits, never in
// exponent form.
func formatValue(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("bench write json: %w", err)
	}
	return nil
}

// writeAgainstBaselines writes, after a blank line, the table of target
// t's speed ratios against each of bases.
func (r *Report) writeAgainstBaselines(w io.Writer, keys []string, byKey map[string]map[int]Metric, t int, bases []int) error {
	var against [][2]int
	for _, b := range bases {
		against = append(against, [2]int{t, b})
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return fmt.Errorf("bench write table: %w", err)
	}
	return r.writeTable(w, keys, byKey, r.Results[t].Label+" against", nil, against)
}
