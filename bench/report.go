package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Row is one line of a results table.
type Row struct {
	Scenario string
	Metric   string
	Capstan  string
	Baseline string
	Ratio    string
	Target   string
	Verdict  string // "met", "MISSED" or ""
}

// Report collects a scenario's rows and free-form details.
type Report struct {
	Title   string
	Started time.Time
	Rows    []Row
	Details []string
}

func (r *Report) add(row Row) { r.Rows = append(r.Rows, row) }
func (r *Report) note(format string, args ...any) {
	r.Details = append(r.Details, fmt.Sprintf(format, args...))
}

// Markdown writes the report as a Markdown table plus details.
func (r *Report) Markdown(w io.Writer) {
	fmt.Fprintf(w, "### %s (%s)\n\n", r.Title, r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintln(w, "| scenario | metric | Capstan | baseline | ratio | target | verdict |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---|---|")
	for _, x := range r.Rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", x.Scenario, x.Metric, x.Capstan, x.Baseline, x.Ratio, x.Target, x.Verdict)
	}
	if len(r.Details) > 0 {
		fmt.Fprintln(w)
		for _, d := range r.Details {
			fmt.Fprintf(w, "- %s\n", d)
		}
	}
	fmt.Fprintln(w)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func perSec(v float64) string { return fmt.Sprintf("%s/s", thousands(int64(v+0.5))) }

func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

func latencies(r *Result) string {
	h := r.Latency
	return fmt.Sprintf("%s / %s / %s / %s", fmtDur(h.Quantile(.5)), fmtDur(h.Quantile(.9)), fmtDur(h.Quantile(.99)), fmtDur(h.Max()))
}

// median returns the result with the median throughput (upper median for
// an even count) and a histogram merged over all rounds.
func median(rs []*Result) (*Result, *Histogram) {
	s := append([]*Result(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].EPS() < s[j].EPS() })
	all := NewHistogram()
	for _, r := range rs {
		all.Merge(r.Latency)
	}
	return s[len(s)/2], all
}
