package replay

import (
	"math"
	"testing"
	"time"
)

func TestMedianDuration(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{7 * s}, 7 * s},
		// two waits: their mean, not the larger one
		{[]time.Duration{10 * s, 30 * s}, 20 * s},
		{[]time.Duration{30 * s, 10 * s}, 20 * s},
		{[]time.Duration{1 * s, 2 * s, 9 * s}, 2 * s},
		{[]time.Duration{9 * s, 1 * s, 2 * s}, 2 * s},
		{[]time.Duration{4 * s, 1 * s, 3 * s, 100 * s}, 3500 * time.Millisecond},
		{[]time.Duration{1, 2}, 1}, // rounds toward zero
		{[]time.Duration{math.MaxInt64, math.MaxInt64}, math.MaxInt64},
		{[]time.Duration{math.MaxInt64 - 1, math.MaxInt64}, math.MaxInt64 - 1},
	} {
		in := append([]time.Duration(nil), tc.in...)
		if got := MedianDuration(tc.in); got != tc.want {
			t.Errorf("MedianDuration(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Fatalf("MedianDuration changed its input: %v, was %v", tc.in, in)
			}
		}
	}
}
