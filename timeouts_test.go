package stage_test

import (
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/eventstore"
)

func TestWithBackgroundTimeouts(t *testing.T) {
	for _, c := range []struct {
		write, close time.Duration
		ok           bool
	}{
		{time.Second, time.Second, true},
		{time.Millisecond, time.Hour, true},
		{0, time.Second, false},
		{time.Second, 0, false},
		{-time.Second, time.Second, false},
		{2 * time.Hour, time.Second, false},
	} {
		eng, err := stage.New(eventstore.NewMemory(), stage.WithBackgroundTimeouts(c.write, c.close))
		if (err == nil) != c.ok {
			t.Errorf("WithBackgroundTimeouts(%v, %v): %v", c.write, c.close, err)
		}
		if eng != nil {
			eng.Close()
		}
	}
}
