package replay

import (
	"slices"
	"time"
)

// MedianDuration returns the median of ds: the middle value of an odd
// count, the mean of the two middle values of an even count, 0 for none.
// ds is not changed.
func MedianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	// a/2 + b/2 (plus the lost halves) cannot overflow as a+b could.
	a, b := s[mid-1], s[mid]
	return a/2 + b/2 + (a%2+b%2)/2
}
