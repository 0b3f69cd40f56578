// Command peertable reads the output of
//
//	go test -run '^$' -bench Peer -benchtime 1x .
//
// (from the files named as arguments, or standard input) and prints, as a
// markdown table, the median of every metric of every BenchmarkPeer
// workload over the rounds, and the ratios of ours to raw and to rita:
// the ratio of the medians and, in brackets, the lowest and highest ratio
// of one round (ours and the peer of the same round, run one after the
// other). Throughput ratios are ours/peer (above 1: ours faster); ms/load
// ratios are peer/ours (above 1: ours loads faster); latency ratios are
// ours/peer (below 1: ours quicker).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: peertable [file ...]  (go test -bench Peer output; standard input if none)")
	}
	flag.Parse()
	var runs []Run
	if flag.NArg() == 0 {
		rs, err := Parse(os.Stdin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "peertable:", err)
			os.Exit(1)
		}
		runs = rs
	}
	for _, name := range flag.Args() {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "peertable:", err)
			os.Exit(1)
		}
		rs, err := Parse(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "peertable: %s: %v\n", name, err)
			os.Exit(1)
		}
		runs = append(runs, rs...)
	}
	if len(runs) == 0 {
		fmt.Fprintln(os.Stderr, "peertable: no BenchmarkPeer result in the input")
		os.Exit(1)
	}
	fmt.Print(Table(runs))
}

// Run is one result line: one round of one variant of one workload.
type Run struct {
	Workload string             // e.g. "lazy/callers=256/meetings=1000"
	Variant  string             // ours, raw, rita, ours-storeload
	Metrics  map[string]float64 // unit -> value
}

// Parse reads the BenchmarkPeer result lines of go test output, in order.
func Parse(r io.Reader) ([]Run, error) {
	var runs []Run
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkPeer/") {
			continue
		}
		name := strings.TrimPrefix(f[0], "BenchmarkPeer/")
		if strings.HasPrefix(name, "round=") {
			if i := strings.IndexByte(name, '/'); i > 0 {
				name = name[i+1:]
			}
		}
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // the GOMAXPROCS suffix
			}
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			continue
		}
		run := Run{Workload: name[:i], Variant: name[i+1:], Metrics: map[string]float64{}}
		for j := 2; j+1 < len(f); j += 2 {
			v, err := strconv.ParseFloat(f[j], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: value %q: %w", f[0], f[j], err)
			}
			run.Metrics[f[j+1]] = v
		}
		runs = append(runs, run)
	}
	return runs, sc.Err()
}

// Median is the median of vs (the mean of the middle two for an even
// count); 0 for none.
func Median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// units are the metrics shown, in order, with how a ratio reads.
var units = []struct {
	unit, label string
	speed       bool // ratio is ours/peer for rates, peer/ours for times
	lowerBetter bool
}{
	{"cmds/s", "", true, false},
	{"msgs/s", "", true, false},
	{"ms/load", "", true, true},
	{"p50-us", "p50 latency (us)", false, true},
	{"p99-us", "p99 latency (us)", false, true},
	{"cores", "cores used (of 2)", false, false},
	{"cpu-us/op", "CPU per command (us)", false, true},
}

// Table returns the markdown table of runs' medians and ratios.
func Table(runs []Run) string {
	var workloads []string
	series := map[string]map[string]map[string][]float64{} // workload, variant, unit
	for _, r := range runs {
		if series[r.Workload] == nil {
			series[r.Workload] = map[string]map[string][]float64{}
			workloads = append(workloads, r.Workload)
		}
		if series[r.Workload][r.Variant] == nil {
			series[r.Workload][r.Variant] = map[string][]float64{}
		}
		for u, v := range r.Metrics {
			series[r.Workload][r.Variant][u] = append(series[r.Workload][r.Variant][u], v)
		}
	}
	var b strings.Builder
	b.WriteString("| workload | ours | raw guarded | rita | ours vs raw | ours vs rita | rounds |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, w := range workloads {
		vs := series[w]
		first := true
		for _, u := range units {
			rate := vs["ours"][u.unit]
			if len(rate) == 0 {
				continue
			}
			label := "  " + u.label
			if first {
				label, first = w, false
			}
			row := []string{label, cell(rate, u.unit)}
			for _, peer := range []string{"raw", "rita"} {
				row = append(row, cell(peerSeries(vs[peer], u.unit)))
			}
			for _, peer := range []string{"raw", "rita"} {
				ps, _ := peerSeries(vs[peer], u.unit)
				row = append(row, ratio(rate, ps, u.speed && u.lowerBetter))
			}
			row = append(row, strconv.Itoa(len(rate)))
			b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		}
		for v, ms := range sortedVariants(vs) {
			if v == "ours" || v == "raw" || v == "rita" {
				continue
			}
			for _, u := range units {
				if len(ms[u.unit]) == 0 {
					continue
				}
				rita, _ := peerSeries(vs["rita"], u.unit)
				row := []string{"  " + v, cell(ms[u.unit], u.unit), "", cell(rita, u.unit), "",
					ratio(ms[u.unit], rita, u.speed && u.lowerBetter), strconv.Itoa(len(ms[u.unit]))}
				b.WriteString("| " + strings.Join(row, " | ") + " |\n")
			}
		}
	}
	return b.String()
}

// peerSeries is the peer's series of unit, and its unit: a raw publish
// counts msgs/s where ours counts cmds/s.
func peerSeries(m map[string][]float64, unit string) ([]float64, string) {
	if unit == "cmds/s" && len(m["cmds/s"]) == 0 {
		return m["msgs/s"], "msgs/s"
	}
	return m[unit], unit
}

func sortedVariants(vs map[string]map[string][]float64) func(func(string, map[string][]float64) bool) {
	return func(yield func(string, map[string][]float64) bool) {
		names := make([]string, 0, len(vs))
		for v := range vs {
			names = append(names, v)
		}
		slices.Sort(names)
		for _, v := range names {
			if !yield(v, vs[v]) {
				return
			}
		}
	}
}

func cell(vs []float64, unit string) string {
	if len(vs) == 0 {
		return ""
	}
	m := Median(vs)
	switch {
	case unit == "cores" || m < 100 && (unit == "ms/load" || unit == "cpu-us/op"):
		return fmt.Sprintf("%.2f %s", m, unit)
	case m >= 100_000:
		return fmt.Sprintf("%.0fk %s", m/1000, unit)
	default:
		return fmt.Sprintf("%.0f %s", m, unit)
	}
}

// ratio is the ratio of the medians of ours and peer (peer/ours if
// inverse) and, in brackets, the range of the per-round ratios (round i of
// ours against round i of peer).
func ratio(ours, peer []float64, inverse bool) string {
	if len(ours) == 0 || len(peer) == 0 {
		return ""
	}
	r := func(o, p float64) float64 {
		if inverse {
			o, p = p, o
		}
		if p == 0 {
			return 0
		}
		return o / p
	}
	var per []float64
	for i := range min(len(ours), len(peer)) {
		per = append(per, r(ours[i], peer[i]))
	}
	return fmt.Sprintf("%.2fx [%.2f-%.2f]", r(Median(ours), Median(peer)), slices.Min(per), slices.Max(per))
}
