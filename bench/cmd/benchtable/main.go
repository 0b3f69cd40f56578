// Command benchtable runs the benchmarks of package bench and prints one
// table: workload, ours, raw JetStream on the same embedded server in the
// same run, their ratio, and the target of issue 5.
//
//	go run ./bench/cmd/benchtable                 # the whole set, a few minutes
//	go run ./bench/cmd/benchtable -n 20000        # more commands per JetStream workload
//	go run ./bench/cmd/benchtable -in bench.txt   # tabulate saved `go test -bench` output
//
// Figures on a shared 2-core machine are noisy: compare ratios, and run it a
// few times (or feed several runs to benchstat) before trusting a digit.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// row is one line of the table: a workload of ours, the raw workload it is
// compared with (if any), the metric compared, and the target.
type row struct {
	name, ours, raw, metric, target string
	// higher is true when a bigger metric is better (throughput).
	higher bool
}

var rows = []row{
	{"Decide + Evolve, one command", "Core/decide-evolve", "", "ns/op", "<= 1000 ns", false},
	{"  allocations", "Core/decide-evolve", "", "allocs/op", "<= 3", false},
	{"Engine on Memory, 1 caller", "Core/engine-memory", "", "cmds/s", ">= 200k/s", true},
	{"Engine memory per idle meeting (6 cmds)", "Core/idle-meeting/commands=6", "", "B/meeting", "<= 4096 B", false},
	{"Engine memory per idle meeting (200 cmds)", "Core/idle-meeting/commands=200", "", "B/meeting", "<= 4096 B", false},
	{"JetStream, 1 caller, 1 meeting, lazy sync", "Ours/guarded/callers=1/sync=lazy", "Raw/guarded/callers=1/sync=lazy", "cmds/s", ">= 0.8x", true},
	{"JetStream, 1 caller, 1 meeting, sync always", "Ours/guarded/callers=1/sync=always", "Raw/guarded/callers=1/sync=always", "cmds/s", ">= 0.8x", true},
	{"64 callers, 1000 meetings, lazy sync", "Ours/guarded/callers=64/sync=lazy", "Raw/guarded/callers=64/sync=lazy", "cmds/s", ">= 1.0x", true},
	{"  vs raw async publish", "Ours/guarded/callers=64/sync=lazy", "Raw/async/sync=lazy", "cmds/s", ">= 0.5x", true},
	{"  p50 latency (us)", "Ours/guarded/callers=64/sync=lazy", "Raw/guarded/callers=64/sync=lazy", "p50-us", "", false},
	{"  p99 latency (us)", "Ours/guarded/callers=64/sync=lazy", "Raw/guarded/callers=64/sync=lazy", "p99-us", "", false},
	{"256 callers, 1000 meetings, lazy sync", "Ours/guarded/callers=256/sync=lazy", "Raw/guarded/callers=256/sync=lazy", "cmds/s", ">= 1.0x", true},
	{"  vs raw async publish", "Ours/guarded/callers=256/sync=lazy", "Raw/async/sync=lazy", "cmds/s", ">= 0.5x", true},
	{"  p50 latency (us)", "Ours/guarded/callers=256/sync=lazy", "Raw/guarded/callers=256/sync=lazy", "p50-us", "", false},
	{"  p99 latency (us)", "Ours/guarded/callers=256/sync=lazy", "Raw/guarded/callers=256/sync=lazy", "p99-us", "", false},
	{"64 callers, 1000 meetings, sync always", "Ours/guarded/callers=64/sync=always", "Raw/guarded/callers=64/sync=always", "cmds/s", "", true},
	{"256 callers, 1000 meetings, sync always", "Ours/guarded/callers=256/sync=always", "Raw/guarded/callers=256/sync=always", "cmds/s", ">= 3x (group commit)", true},
	{"  p50 latency (us)", "Ours/guarded/callers=256/sync=always", "Raw/guarded/callers=256/sync=always", "p50-us", "", false},
	{"  p99 latency (us)", "Ours/guarded/callers=256/sync=always", "Raw/guarded/callers=256/sync=always", "p99-us", "", false},
	{"One meeting, 256 callers, sync always", "Ours/onemeeting/callers=256/sync=always", "Raw/onesubject/callers=256/sync=always", "cmds/s", ">= 4x, >= 15k/s", true},
	{"  p99 latency (us)", "Ours/onemeeting/callers=256/sync=always", "Raw/onesubject/callers=256/sync=always", "p99-us", "<= 50 ms", false},
	{"One meeting, 256 callers, lazy sync", "Ours/onemeeting/callers=256/sync=lazy", "Raw/onesubject/callers=256/sync=lazy", "cmds/s", ">= 0.8x", true},
	{"One meeting, 64 callers, sync always", "Ours/onemeeting/callers=64/sync=always", "Raw/onesubject/callers=64/sync=always", "cmds/s", "", true},
	{"Livestream: 100k viewers enter, 10% raise hands, bulk grants, rotation, half leave (256 callers, sync always)", "Ours/livestream/viewers=100000/callers=256/sync=always", "", "cmds/s", "", true},
	{"  p99 latency (us)", "Ours/livestream/viewers=100000/callers=256/sync=always", "", "p99-us", "<= 50 ms", false},
	{"  notifications to one watcher", "Ours/livestream/viewers=100000/callers=256/sync=always", "", "notifications/s", "", true},
	{"  cold load at the end", "Ours/livestream/viewers=100000/callers=256/sync=always", "", "coldload-ms", "<= 50 ms", false},
	{"  heap per participant, cached", "Ours/livestream/viewers=100000/callers=256/sync=always", "", "B/participant", "<= 300 B", false},
	{"Reads (Status), 64 callers, 100 meetings: WithCachedReads vs catching up", "Ours/reads/callers=64/cached=true", "Ours/reads/callers=64/cached=false", "reads/s", "", true},
	{"  p99 latency (us)", "Ours/reads/callers=64/cached=true", "Ours/reads/callers=64/cached=false", "p99-us", "", false},
	{"Replay: fold the stream into rosters", "Ours/replay", "Raw/replay", "events/s", ">= 0.7x", true},
	{"  verify: re-decide every event", "Ours/verify", "Raw/replay", "events/s", "", true},
	{"  fold vs raw, interleaved in each iteration", "Ours/replaypair", "", "x-raw", ">= 0.7x", true},
	{"  verify vs raw, interleaved", "Ours/replaypair", "", "verify-x-raw", "", true},
	{"Load one meeting of 20k events", "Ours/load/events=20000", "", "ms/load", "", false},
	{"Cold load, meeting in a large stream vs small", "Ours/coldload/stream=large", "Ours/coldload/stream=small", "ms/load", "<= 1.5x", false},
	{"  the same, each meeting with a snapshot at its head", "Ours/coldload/snapshot/stream=large", "Ours/coldload/snapshot/stream=small", "ms/load", "", false},
	{"  the same, no configuration: after an Engine read it and closed", "Ours/coldload/default/stream=large", "Ours/coldload/default/stream=small", "ms/load", "<= 1.5x", false},
	{"  the same, no configuration: after an Engine wrote to it and was killed", "Ours/coldload/default/crash/stream=large", "Ours/coldload/default/crash/stream=small", "ms/load", "<= 1.5x", false},
	{"Cold load, 100k participants and 10k requests, snapshots", "Ours/coldload/participants=100000/queue=10000/snapshots=on", "Ours/coldload/participants=100000/queue=10000/snapshots=off", "ms/load", "<= 50 ms, <= 0.1x", false},
}

// line matches a benchmark result: name, iterations, then value-unit pairs.
var line = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func main() {
	in := flag.String("in", "", "read `go test -bench` output from this file instead of running the benchmarks")
	n := flag.Int("n", 5000, "commands per JetStream workload")
	flag.Parse()

	var out []byte
	if *in != "" {
		var err error
		if out, err = os.ReadFile(*in); err != nil {
			fatal(err)
		}
	} else {
		var buf bytes.Buffer
		run := func(pattern, benchtime string) {
			cmd := exec.Command("go", "test", "-run", "^$", "-bench", pattern, "-benchtime", benchtime, "./bench")
			cmd.Stdout = io.MultiWriter(&buf, os.Stderr)
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				fatal(fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err))
			}
		}
		run("^BenchmarkCore$", "1s")
		run("^Benchmark(Ours|Raw)$/(guarded|async|batch|onemeeting|onesubject|reads)", strconv.Itoa(*n)+"x")
		run("^Benchmark(Ours|Raw)$/(replay|verify|replaypair|load|coldload|livestream)", "1x")
		out = buf.Bytes()
	}
	results := parse(out)
	fmt.Println("| workload | ours | raw / reference | ratio | target |")
	fmt.Println("|---|---|---|---|---|")
	for _, r := range rows {
		ours, ok := results[r.ours][r.metric]
		if !ok {
			continue
		}
		rawUnit := r.metric
		if rawUnit == "cmds/s" {
			rawUnit = "msgs/s" // a raw message stands for a command
		}
		raw, hasRaw := results[r.raw][rawUnit]
		ratio := ""
		if hasRaw && raw != 0 {
			ratio = fmt.Sprintf("%.2fx", ours/raw)
		}
		rawS := ""
		if hasRaw {
			rawS = format(raw, rawUnit)
		}
		fmt.Printf("| %s | %s | %s | %s | %s |\n", r.name, format(ours, r.metric), rawS, ratio, r.target)
	}
}

// parse returns, per benchmark name (without "Benchmark" and the -N
// suffix), its metrics by unit, averaged over repeated runs.
func parse(out []byte) map[string]map[string]float64 {
	sum := map[string]map[string]float64{}
	count := map[string]map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := line.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		if sum[m[1]] == nil {
			sum[m[1]], count[m[1]] = map[string]float64{}, map[string]int{}
		}
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			sum[m[1]][f[i+1]] += v
			count[m[1]][f[i+1]]++
		}
	}
	for name, units := range sum {
		for u := range units {
			units[u] /= float64(count[name][u])
		}
	}
	return sum
}

func format(v float64, unit string) string {
	switch {
	case v >= 100_000:
		return fmt.Sprintf("%.0fk %s", v/1000, unit)
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	default:
		return fmt.Sprintf("%.2f %s", v, unit)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "benchtable:", err)
	os.Exit(1)
}
