package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable writes the report as a table: one row per metric, one column
// per target headed by its label, then for the last target one column per
// other target headed "last/other" with the speed ratio of the two. A
// speed ratio above 1 means the last target was faster; for durations it
// is other/last, for rates last/other. Missing figures print as "-". A
// last line gives the load averages, when known.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	keys, byKey := r.index()
	n := len(r.Results)
	// Pad the metric names so they stay left-aligned in a right-aligned table.
	width := len("metric")
	for _, k := range keys {
		width = max(width, len(k))
	}
	fmt.Fprintf(tw, "%-*s\t", width, "metric")
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%s\t", res.Label)
	}
	if n > 1 {
		last := r.Results[n-1].Label
		for _, res := range r.Results[:n-1] {
			fmt.Fprintf(tw, "%s/%s\t", last, res.Label)
		}
	}
	fmt.Fprintln(tw)
	for _, k := range keys {
		row := byKey[k]
		fmt.Fprintf(tw, "%-*s\t", width, k)
		for i := range r.Results {
			if m, ok := row[i]; ok {
				fmt.Fprintf(tw, "%s\t", formatValue(m.Value))
			} else {
				fmt.Fprint(tw, "-\t")
			}
		}
		if n > 1 {
			last, lok := row[n-1]
			for i := range r.Results[:n-1] {
				other, ok := row[i]
				if !ok || !lok {
					fmt.Fprint(tw, "-\t")
					continue
				}
				fmt.Fprintf(tw, "%.2f\t", SpeedRatio(last, other))
			}
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench write table: %w", err)
	}
	if n > 1 {
		if _, err := fmt.Fprintln(w, "ratios are speed ratios: above 1 the last target is faster"); err != nil {
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
