package stage_test

// The workload and the ledger the crash tests (crash_test.go) share: a
// writer that issues keyed commands the rules accept, rebuilt from their
// keys when retried, and the record of what was acknowledged, checked
// against the log afterwards.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/replay"
)

// crashMeetings are the meetings the crash workloads write, one writer
// goroutine each.
var crashMeetings = []string{"c0", "c1", "c2"}

// crashViewers are the users who move through the stage; "alice" is the
// host.
var crashViewers = []string{"bob", "carol", "dave"}

// crashKey names a command of the workload: the meeting, a number unique
// in the run, what it does and to whom. The key is the whole command: a
// retry rebuilds the command from it ([crashCommand]), so the same key
// always carries the same command.
func crashKey(meeting string, n int, code, user string) string {
	return fmt.Sprintf("%s.%d.%s.%s", meeting, n, code, user)
}

// crashCommand returns the meeting and the command of a key of [crashKey].
func crashCommand(key string) (string, aggregate.Command, error) {
	p := strings.Split(key, ".")
	if len(p) != 4 {
		return "", aggregate.Command{}, fmt.Errorf("bad crash key %q", key)
	}
	if _, err := strconv.Atoi(p[1]); err != nil {
		return "", aggregate.Command{}, fmt.Errorf("bad crash key %q", key)
	}
	m, code, u := p[0], p[2], p[3]
	var c aggregate.Command
	switch code {
	case "host":
		c.Action = aggregate.AddParticipant{Participant: aggregate.Participant{UserID: u, Permissions: eoHost}}
	case "add":
		c.Action = aggregate.AddParticipant{Participant: aggregate.Participant{UserID: u, Permissions: eoViewer}}
	case "rm":
		c.Action = aggregate.RemoveParticipant{UserID: u}
	case "disc":
		c.Action = aggregate.Disconnect{UserID: u}
	case "req":
		c = aggregate.Command{Actor: u, Action: aggregate.RequestAccess{}}
	case "cancel":
		c = aggregate.Command{Actor: u, Action: aggregate.CancelRequestAccess{}}
	case "grant":
		c = aggregate.Command{Actor: "alice", Action: aggregate.GrantAccess{Users: []string{u}}}
	case "deny":
		c = aggregate.Command{Actor: "alice", Action: aggregate.DenyAccess{Users: []string{u}, Reason: "not now"}}
	case "join":
		c = aggregate.Command{Actor: u, Action: aggregate.Join{}}
	case "leave":
		c = aggregate.Command{Actor: u, Action: aggregate.Leave{}}
	case "kick":
		c = aggregate.Command{Actor: "alice", Action: aggregate.Kick{Users: []string{u}}}
	default:
		return "", aggregate.Command{}, fmt.Errorf("bad crash key %q: unknown command %q", key, code)
	}
	return m, c, nil
}

// crashNext chooses the next command for meeting m, numbered n, from the
// meeting's state as eng sees it: one the rules accept (the host first,
// then a viewer's next step through the stage, now and then leaving the
// meeting by the backend's RemoveParticipant).
func crashNext(ctx context.Context, eng *stage.Engine, m string, n int, rng *rand.Rand) (string, error) {
	if _, err := eng.Status(ctx, m, "alice"); errors.Is(err, aggregate.ErrNotParticipant) || errors.Is(err, aggregate.ErrNoMeeting) {
		return crashKey(m, n, "host", "alice"), nil
	} else if err != nil {
		return "", err
	}
	u := crashViewers[rng.IntN(len(crashViewers))]
	st, err := eng.Status(ctx, m, u)
	if errors.Is(err, aggregate.ErrNotParticipant) {
		return crashKey(m, n, "add", u), nil
	}
	if err != nil {
		return "", err
	}
	pick := func(codes ...string) string { return crashKey(m, n, codes[rng.IntN(len(codes))], u) }
	switch st {
	case aggregate.OffStage:
		return pick("req", "req", "req", "rm", "disc"), nil
	case aggregate.RequestedToJoinStage:
		return pick("grant", "grant", "cancel", "deny"), nil
	case aggregate.AcceptedToJoinStage:
		return pick("join", "join", "join", "leave"), nil
	case aggregate.OnStage:
		return pick("leave", "leave", "kick"), nil
	}
	return "", fmt.Errorf("meeting %s: %s has status %v", m, u, st)
}

// crashAck is an acknowledged command: the versions of its events.
type crashAck struct{ first, last uint64 }

// crashLedger records what the writers were told: the commands attempted
// and not yet answered, the acknowledged ones (with their versions) and
// the ones the rules rejected. It is safe for concurrent use.
type crashLedger struct {
	mu       sync.Mutex
	pending  map[string]bool
	acked    map[string]crashAck
	rejected map[string]bool
	order    map[string][]string // meeting -> its acknowledged keys, in order
	dups     int                 // retries answered as duplicates
	errs     []string            // what the ledger found wrong
}

func newCrashLedger() *crashLedger {
	return &crashLedger{pending: map[string]bool{}, acked: map[string]crashAck{}, rejected: map[string]bool{}, order: map[string][]string{}}
}

func (l *crashLedger) fail(format string, args ...any) {
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
}

// try records that a writer is about to execute key.
func (l *crashLedger) try(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.acked[key]; !ok && !l.rejected[key] {
		l.pending[key] = true
	}
}

// ack records key's acknowledgement. A key acknowledged before must come
// back as a duplicate with the same events.
func (l *crashLedger) ack(key string, a crashAck, dup bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if dup {
		l.dups++
	}
	if a.first == 0 || a.last < a.first {
		l.fail("%s acknowledged with versions %d..%d", key, a.first, a.last)
	}
	if l.rejected[key] {
		l.fail("%s acknowledged after it was rejected", key)
	}
	if old, ok := l.acked[key]; ok {
		if !dup || old != a {
			l.fail("retry of acknowledged %s (versions %d..%d): duplicate %v, versions %d..%d: applied twice", key, old.first, old.last, dup, a.first, a.last)
		}
		return
	}
	delete(l.pending, key)
	l.acked[key] = a
	m, _, _ := strings.Cut(key, ".")
	l.order[m] = append(l.order[m], key)
}

// rej records that the rules rejected key: it must not be in the log.
func (l *crashLedger) rej(key string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.acked[key]; ok {
		l.fail("retry of acknowledged %s (versions %d..%d) rejected (%v): the engine forgot the command", key, old.first, old.last, err)
	}
	delete(l.pending, key)
	l.rejected[key] = true
}

// retries returns the keys a restarted writer retries: every one attempted
// and not answered, and the last few acknowledged of each meeting (which
// must answer as duplicates).
func (l *crashLedger) retries(lastAcked int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for k := range l.pending {
		out = append(out, k)
	}
	slices.Sort(out)
	for _, m := range crashMeetings {
		o := l.order[m]
		out = append(out, o[max(0, len(o)-lastAcked):]...)
	}
	return out
}

// counts returns how many commands were acknowledged, rejected and left
// pending, and how many retries answered as duplicates.
func (l *crashLedger) counts() (acked, rejected, pending, dups int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked), len(l.rejected), len(l.pending), l.dups
}

// check reads every meeting's log from st and holds it to the ledger:
// versions run 1, 2, 3 ... with an unbroken hash chain; each command key
// (actor and id) is one run of consecutive events, never two; every
// acknowledged command is there with the versions it was acknowledged
// with; no rejected command is; and, once no command is pending, every
// key in the log was acknowledged. It returns the number of events.
func (l *crashLedger) check(t *testing.T, ctx context.Context, st eventstore.Store) int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		t.Error(e)
	}
	type run struct {
		meeting     string
		first, last uint64
	}
	seen := map[events.CommandKey]run{}
	ids := map[string]run{}
	n := 0
	for _, m := range crashMeetings {
		var prev uint64
		var prevHash events.Hash
		for e, err := range st.Load(ctx, m, 1) {
			if err != nil {
				t.Fatalf("meeting %s after version %d: %v", m, prev, err)
			}
			if err := eventstore.CheckNext(&e, prev, prevHash); err != nil {
				t.Fatalf("meeting %s: %v", m, err)
			}
			prev, prevHash = e.Version, e.Hash
			n++
			k := e.CommandKey()
			r, ok := seen[k]
			switch {
			case !ok:
				r = run{m, e.Version, e.Version}
			case r.meeting == m && r.last == e.Version-1:
				r.last = e.Version
			default:
				t.Errorf("meeting %s version %d: command %s (actor %q) applied again (first at %s version %d)", m, e.Version, e.CommandID, e.Actor, r.meeting, r.first)
			}
			seen[k] = r
			ids[e.CommandID] = r
		}
	}
	for key, a := range l.acked {
		r, ok := ids[key]
		if !ok {
			t.Errorf("acknowledged command %s (versions %d..%d) is not in the log: lost", key, a.first, a.last)
		} else if r.first != a.first || r.last != a.last {
			t.Errorf("acknowledged command %s: versions %d..%d in the log, %d..%d acknowledged", key, r.first, r.last, a.first, a.last)
		}
	}
	for key := range l.rejected {
		if r, ok := ids[key]; ok {
			t.Errorf("rejected command %s is in the log at %s version %d", key, r.meeting, r.first)
		}
	}
	if len(l.pending) == 0 {
		for id, r := range ids {
			if _, ok := l.acked[id]; !ok {
				t.Errorf("command %s is in the log (%s versions %d..%d) but no writer was told so", id, r.meeting, r.first, r.last)
			}
		}
	}
	return n
}

// crashVerify runs replay.Verify over the log at location (a data
// directory or a nats:// URL), read raw as stagereplay reads it, and
// requires it clean and holding want events.
func crashVerify(t *testing.T, ctx context.Context, location string, want int) {
	t.Helper()
	src, err := replay.Open(ctx, location)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rep, err := replay.Verify(ctx, src.Events(ctx, ""))
	if err != nil {
		t.Fatalf("verify %s: %v", location, err)
	}
	for _, f := range rep.Findings {
		t.Errorf("verify: %v", f)
	}
	if rep.Events != want {
		t.Errorf("verify read %d events, the meetings hold %d", rep.Events, want)
	}
}

// crashRun is one meeting's writer: it executes the retries of meeting m
// (keys of other meetings are skipped), then new commands numbered from
// base, limit of them (no limit if limit is 0), until ctx ends. exec runs
// one command and reports its outcome; an error from it ends the writer.
// Each read of the meeting's state (to choose the next command) has
// readTimeout; one that outlasts it by crashSlack ends the writer, and so
// does a failed one, unless transient (if not nil) says to try again.
func crashRun(ctx context.Context, eng *stage.Engine, m string, retries []string, base, limit int, rng *rand.Rand,
	readTimeout time.Duration, exec func(key string) error, transient func(error) bool) error {
	for _, key := range retries {
		if km, _, _ := strings.Cut(key, "."); km != m {
			continue
		}
		if err := exec(key); err != nil {
			return err
		}
	}
	for n := base; limit == 0 || n < base+limit; n++ {
		if ctx.Err() != nil {
			return nil
		}
		next := func() (string, error) {
			rctx, cancel := context.WithTimeout(ctx, readTimeout)
			defer cancel()
			t0 := time.Now()
			key, err := crashNext(rctx, eng, m, n, rng)
			if d := time.Since(t0); d > readTimeout+crashSlack {
				return "", fmt.Errorf("reading meeting %s took %v, past its %v deadline (%v)", m, d, readTimeout, err)
			}
			return key, err
		}
		key, err := next()
		for err != nil && ctx.Err() == nil && transient != nil && transient(err) {
			time.Sleep(20 * time.Millisecond)
			key, err = next()
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := exec(key); err != nil {
			return err
		}
	}
	return nil
}

// crashSlack is how far past its deadline a call may return before it
// counts as a hang.
const crashSlack = 2 * time.Second

// crashDomain reports whether err is the rules' rejection.
func crashDomain(err error) bool {
	var ae *aggregate.Error
	return errors.As(err, &ae)
}

// TestDisconnectRetryOnJetStream: a retried Disconnect (no reconnect grace:
// the user leaves the meeting) answers as a duplicate on the JetStream
// store as it does on the memory store. The crash test found that it did
// not: the JSON codec dropped ParticipantLeft's Reason ("Disconnected"), so
// the stored event read back as a RemoveParticipant's and the retry was
// refused with ErrKeyReused.
func TestDisconnectRetryOnJetStream(t *testing.T) {
	ctx := context.Background()
	for name, open := range map[string]func(t *testing.T) eventstore.Store{
		"memory": func(t *testing.T) eventstore.Store { return eventstore.NewMemory() },
		"embedded": func(t *testing.T) eventstore.Store {
			emb, err := natsstore.OpenEmbedded(ctx, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { emb.Close() })
			return emb.Store
		},
	} {
		t.Run(name, func(t *testing.T) {
			eng := eoEngine(t, open(t))
			disc := aggregate.Command{Action: aggregate.Disconnect{UserID: "bob"}}
			first, err := eng.Execute(ctx, "w", disc, stage.WithIdempotencyKey("K"))
			if err != nil {
				t.Fatal(err)
			}
			again, err := eng.Execute(ctx, "w", disc, stage.WithIdempotencyKey("K"))
			if err != nil || !again.Duplicate || again.Version != first.Version {
				t.Fatalf("retried Disconnect: %+v, %v; want a duplicate of version %d", again, err, first.Version)
			}
			if p, ok := again.Events[0].Payload.(*events.ParticipantLeft); !ok || p.Reason != "Disconnected" {
				t.Fatalf("stored event %+v, want ParticipantLeft with reason Disconnected", again.Events[0].Payload)
			}
		})
	}
}
