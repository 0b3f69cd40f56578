package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkPeer/round=1/lazy/callers=64/meetings=1000/ours-2   1  5 ns/op  100 cmds/s  0.5 cores  10 p50-us  90 p99-us
BenchmarkPeer/round=1/lazy/callers=64/meetings=1000/raw-2    1  5 ns/op  0.9 cores  200 msgs/s  5 p50-us  30 p99-us
BenchmarkPeer/round=1/lazy/callers=64/meetings=1000/rita-2   1  5 ns/op  50 cmds/s  0.4 cores  20 p50-us  60 p99-us
BenchmarkPeer/round=1/load/events=20000/ours-2   1  5 ns/op  40 ms/load
BenchmarkPeer/round=1/load/events=20000/rita-2   1  5 ns/op  80 ms/load
BenchmarkPeer/round=2/lazy/callers=64/meetings=1000/ours-2   1  5 ns/op  300 cmds/s  0.5 cores  10 p50-us  90 p99-us
BenchmarkPeer/round=2/lazy/callers=64/meetings=1000/raw-2    1  5 ns/op  0.9 cores  100 msgs/s  5 p50-us  30 p99-us
BenchmarkPeer/round=2/lazy/callers=64/meetings=1000/rita-2   1  5 ns/op  100 cmds/s  0.4 cores  20 p50-us  60 p99-us
BenchmarkPeer/round=2/load/events=20000/ours-2   1  5 ns/op  20 ms/load
BenchmarkPeer/round=2/load/events=20000/rita-2   1  5 ns/op  60 ms/load
BenchmarkPeer/round=3/lazy/callers=64/meetings=1000/ours-2   1  5 ns/op  200 cmds/s  0.5 cores  10 p50-us  90 p99-us
BenchmarkPeer/round=3/lazy/callers=64/meetings=1000/raw-2    1  5 ns/op  0.9 cores  400 msgs/s  5 p50-us  30 p99-us
BenchmarkPeer/round=3/lazy/callers=64/meetings=1000/rita-2   1  5 ns/op  80 cmds/s  0.4 cores  20 p50-us  60 p99-us
BenchmarkPeer/round=3/load/events=20000/ours-2   1  5 ns/op  30 ms/load
BenchmarkPeer/round=3/load/events=20000/rita-2   1  5 ns/op  90 ms/load
PASS
`

func TestParse(t *testing.T) {
	runs, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 15 {
		t.Fatalf("%d runs, want 15", len(runs))
	}
	r := runs[1]
	if r.Workload != "lazy/callers=64/meetings=1000" || r.Variant != "raw" || r.Metrics["msgs/s"] != 200 || r.Metrics["cores"] != 0.9 {
		t.Fatalf("runs[1] = %+v", r)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestTable(t *testing.T) {
	runs, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	got := Table(runs)
	for _, want := range []string{
		// medians 200 / 200 / 80; per round 100/200, 300/100, 200/400 and 100/50, 300/100, 200/80
		"| lazy/callers=64/meetings=1000 | 200 cmds/s | 200 msgs/s | 80 cmds/s | 1.00x [0.50-3.00] | 2.50x [2.00-3.00] | 3 |",
		// ms/load ratios are rita/ours: medians 80/30; per round 80/40, 60/20, 90/30
		"| load/events=20000 | 30.00 ms/load |  | 80.00 ms/load |  | 2.67x [2.00-3.00] | 3 |",
		"|   p99 latency (us) | 90 p99-us | 30 p99-us | 60 p99-us | 3.00x [3.00-3.00] | 1.50x [1.50-1.50] | 3 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks\n%s\ngot:\n%s", want, got)
		}
	}
}
