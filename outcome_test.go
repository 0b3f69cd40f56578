package stage_test

import (
	"context"
	"errors"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// faultyStore is a Memory store whose writes and reads fail when told to.
type faultyStore struct {
	*eventstore.Memory
	mu     sync.Mutex
	append func(store func() (uint64, error)) (uint64, error) // nil: as Memory
	load   error
	record error
}

func (f *faultyStore) Append(ctx context.Context, meetingID string, v uint64, evs []events.Envelope) (uint64, error) {
	f.mu.Lock()
	hook := f.append
	f.mu.Unlock()
	if hook == nil {
		return f.Memory.Append(ctx, meetingID, v, evs)
	}
	return hook(func() (uint64, error) { return f.Memory.Append(ctx, meetingID, v, evs) })
}

func (f *faultyStore) Load(ctx context.Context, meetingID string, from uint64) iter.Seq2[events.Envelope, error] {
	f.mu.Lock()
	err := f.load
	f.mu.Unlock()
	if err != nil {
		return func(yield func(events.Envelope, error) bool) { yield(events.Envelope{}, err) }
	}
	return f.Memory.Load(ctx, meetingID, from)
}

func (f *faultyStore) RecordCommand(ctx context.Context, meetingID string, k events.CommandKey, rec eventstore.CommandRecord) error {
	f.mu.Lock()
	err := f.record
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.Memory.RecordCommand(ctx, meetingID, k, rec)
}

func (f *faultyStore) set(fn func(f *faultyStore)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// outcomeOf is what an error says it left in the store.
func outcomeOf(err error) string {
	switch ns, unk := errors.Is(err, stage.ErrNotStored), errors.Is(err, stage.ErrOutcomeUnknown); {
	case ns && unk:
		return "both"
	case ns:
		return "not stored"
	case unk:
		return "unknown"
	}
	return "neither"
}

func faultyEngine(t *testing.T, opts ...stage.Option) (*stage.Engine, *faultyStore) {
	t.Helper()
	st := &faultyStore{Memory: eventstore.NewMemory()}
	eng, err := stage.New(st, append([]stage.Option{stage.WithAutoTick(false)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	ctx := context.Background()
	if _, err := eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "host", Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"bob", "carol", "dan", "erin", "fay"} {
		if _, err := eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: u, Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}); err != nil {
			t.Fatal(err)
		}
	}
	return eng, st
}

func stored(t *testing.T, st *faultyStore) int {
	t.Helper()
	n := 0
	for _, err := range st.Memory.Load(context.Background(), "m", 1) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

func request(eng *stage.Engine, ctx context.Context, user, key string) (stage.Result, error) {
	var opts []stage.ExecOption
	if key != "" {
		opts = append(opts, stage.WithIdempotencyKey(key))
	}
	return eng.Execute(ctx, "m", aggregate.Command{Actor: user, Action: aggregate.RequestAccess{}}, opts...)
}

// Every error Execute returns for a failure says what it left in the store;
// a rejection says neither.
func TestExecuteFailureOutcome(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")

	t.Run("lost ack: unknown, and a retry with the key finds it stored", func(t *testing.T) {
		eng, st := faultyEngine(t)
		before := stored(t, st)
		st.set(func(f *faultyStore) {
			f.append = func(store func() (uint64, error)) (uint64, error) { store(); return 0, boom }
		})
		_, err := request(eng, ctx, "bob", "k1")
		if outcomeOf(err) != "unknown" || !errors.Is(err, boom) || stage.ErrorCode(err) != stage.CodeOutcomeUnknown {
			t.Fatalf("lost ack: %v (%s), want outcome unknown wrapping the store's error", err, outcomeOf(err))
		}
		st.set(func(f *faultyStore) { f.append = nil })
		res, err := request(eng, ctx, "bob", "k1")
		if err != nil || !res.Duplicate || stored(t, st) != before+1 {
			t.Fatalf("retry with the key: %+v %v, %d events stored, want the first attempt's, once", res, err, stored(t, st)-before)
		}
	})

	t.Run("lost request: unknown, and a retry with the key applies it", func(t *testing.T) {
		eng, st := faultyEngine(t)
		before := stored(t, st)
		st.set(func(f *faultyStore) {
			f.append = func(func() (uint64, error)) (uint64, error) { return 0, boom }
		})
		_, err := request(eng, ctx, "bob", "k1")
		if outcomeOf(err) != "unknown" {
			t.Fatalf("%v (%s), want unknown: the store did not say", err, outcomeOf(err))
		}
		st.set(func(f *faultyStore) { f.append = nil })
		res, err := request(eng, ctx, "bob", "k1")
		if err != nil || res.Duplicate || stored(t, st) != before+1 {
			t.Fatalf("retry: %+v %v", res, err)
		}
	})

	t.Run("store says unavailable, not stored", func(t *testing.T) {
		eng, st := faultyEngine(t)
		before := stored(t, st)
		st.set(func(f *faultyStore) {
			f.append = func(func() (uint64, error)) (uint64, error) { return 0, eventstore.Unavailable(boom, false) }
		})
		_, err := request(eng, ctx, "bob", "")
		if outcomeOf(err) != "not stored" || !errors.Is(err, stage.ErrUnavailable) || stage.HTTPStatus(err) != 503 || stored(t, st) != before {
			t.Fatalf("%v (%s)", err, outcomeOf(err))
		}
	})

	t.Run("load fails: not stored", func(t *testing.T) {
		_, st := faultyEngine(t)
		eng, err := stage.New(st, stage.WithAutoTick(false)) // a new Engine loads the meeting
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		st.set(func(f *faultyStore) { f.load = boom })
		_, err = request(eng, ctx, "bob", "")
		if outcomeOf(err) != "not stored" || !errors.Is(err, boom) {
			t.Fatalf("%v (%s)", err, outcomeOf(err))
		}
	})

	t.Run("catch-up after an unknown outcome fails: not stored", func(t *testing.T) {
		eng, st := faultyEngine(t)
		st.set(func(f *faultyStore) {
			f.append = func(func() (uint64, error)) (uint64, error) { return 0, boom }
		})
		if _, err := request(eng, ctx, "bob", ""); outcomeOf(err) != "unknown" {
			t.Fatalf("%v", err)
		}
		st.set(func(f *faultyStore) { f.append, f.load = nil, boom })
		if _, err := request(eng, ctx, "carol", ""); outcomeOf(err) != "not stored" || !errors.Is(err, boom) {
			t.Fatalf("%v (%s)", err, outcomeOf(err))
		}
	})

	t.Run("a read the store calls unknown: the command is not stored", func(t *testing.T) {
		eng, st := faultyEngine(t)
		st.set(func(f *faultyStore) {
			f.append = func(func() (uint64, error)) (uint64, error) { return 0, boom }
		})
		if _, err := request(eng, ctx, "bob", ""); outcomeOf(err) != "unknown" {
			t.Fatalf("%v", err)
		}
		st.set(func(f *faultyStore) { f.append, f.load = nil, eventstore.Unavailable(boom, true) })
		_, err := request(eng, ctx, "carol", "")
		if outcomeOf(err) != "not stored" || !errors.Is(err, stage.ErrUnavailable) {
			t.Fatalf("%v (%s)", err, outcomeOf(err))
		}
	})

	t.Run("recording the key fails: not stored, even if that write's own outcome is unknown", func(t *testing.T) {
		eng, st := faultyEngine(t)
		before := stored(t, st)
		st.set(func(f *faultyStore) {
			f.record = eventstore.Unavailable(eventstore.OutcomeUnknown(context.DeadlineExceeded), true)
		})
		_, err := request(eng, ctx, "bob", "k1")
		if outcomeOf(err) != "not stored" || !errors.Is(err, stage.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || stored(t, st) != before {
			t.Fatalf("%v (%s)", err, outcomeOf(err))
		}
	})

	t.Run("conflicts past the attempts: not stored", func(t *testing.T) {
		eng, st := faultyEngine(t, stage.WithRetry(2, time.Microsecond, time.Microsecond))
		st.set(func(f *faultyStore) {
			f.append = func(func() (uint64, error)) (uint64, error) { return 0, eventstore.ErrConflict }
		})
		_, err := request(eng, ctx, "bob", "")
		if outcomeOf(err) != "not stored" || !errors.Is(err, eventstore.ErrConflict) || stage.ErrorCode(err) != stage.CodeConflict {
			t.Fatalf("%v (%s)", err, outcomeOf(err))
		}
	})

	t.Run("context ended before: not stored", func(t *testing.T) {
		eng, _ := faultyEngine(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := request(eng, cctx, "bob", "")
		if outcomeOf(err) != "not stored" || !errors.Is(err, context.Canceled) || stage.HTTPStatus(err) != stage.StatusClientClosedRequest {
			t.Fatalf("%v (%s)", err, outcomeOf(err))
		}
	})

	t.Run("closed: not stored", func(t *testing.T) {
		eng, _ := faultyEngine(t)
		eng.Close()
		_, err := request(eng, ctx, "bob", "")
		if outcomeOf(err) != "not stored" || !errors.Is(err, stage.ErrClosed) || stage.ErrorCode(err) != stage.CodeClosed {
			t.Fatalf("%v (%s)", err, outcomeOf(err))
		}
	})

	t.Run("rejection: neither", func(t *testing.T) {
		eng, _ := faultyEngine(t)
		_, err := eng.Join(ctx, "m", "bob")
		if outcomeOf(err) != "neither" || !errors.Is(err, aggregate.ErrPermissionDenied) {
			t.Fatalf("%v (%s)", err, outcomeOf(err))
		}
		_, err = eng.Join(ctx, "m", "nobody")
		if outcomeOf(err) != "neither" || stage.ErrorCode(err) != "NotParticipant" {
			t.Fatalf("%v (%s)", err, outcomeOf(err))
		}
	})

	t.Run("duplicate whose events cannot be read: unknown", func(t *testing.T) {
		eng, st := faultyEngine(t)
		if _, err := request(eng, ctx, "bob", "k1"); err != nil {
			t.Fatal(err)
		}
		st.set(func(f *faultyStore) { f.load = boom })
		_, err := request(eng, ctx, "bob", "k1")
		if outcomeOf(err) != "unknown" || !errors.Is(err, boom) {
			t.Fatalf("%v (%s)", err, outcomeOf(err))
		}
	})
}

// Commands that joined another's append get its outcome, marked.
func TestExecuteFailureOutcomeGrouped(t *testing.T) {
	ctx := context.Background()
	eng, st := faultyEngine(t)
	eng.GroupAlwaysForTest()
	release := make(chan struct{})
	var calls atomic.Int32
	st.set(func(f *faultyStore) {
		f.append = func(store func() (uint64, error)) (uint64, error) {
			if calls.Add(1) == 1 {
				<-release // the others queue behind this append
				return store()
			}
			return 0, errors.New("connection lost")
		}
	})
	users := []string{"bob", "carol", "dan", "erin", "fay"}
	errs := make([]error, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = request(eng, ctx, u, "")
		}()
		if i == 0 {
			for calls.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	time.Sleep(200 * time.Millisecond) // let them queue (generous: a slow machine)
	close(release)
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		failed++
		if outcomeOf(err) != "unknown" {
			t.Errorf("%s: %v (%s), want unknown", users[i], err, outcomeOf(err))
		}
	}
	if failed != len(users)-1 || calls.Load() >= int32(len(users)) {
		t.Fatalf("%d commands failed in %d appends, want the queued ones grouped", failed, calls.Load())
	}
	t.Logf("%d of %d failed, in %d appends", failed, len(users), calls.Load())
}
