package stage_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// TestEngine_concurrent runs many goroutines issuing random commands from
// two hosts and a crowd of viewers on several meetings at once, through one
// Engine, and through two Engines sharing a store (so that appends conflict
// and are retried). No error but the four domain errors may surface. Then
// every meeting's stored log must be a legal history: gapless, chained,
// replaying to the engines' state, every event one the rules allowed at its
// time (checked by the model), and one event per successful command.
func TestEngine_concurrent(t *testing.T) {
	t.Run("one engine", func(t *testing.T) { testConcurrent(t, 1) })
	t.Run("two engines", func(t *testing.T) { testConcurrent(t, 2) })
}

func testConcurrent(t *testing.T, nEngines int) {
	const (
		workers = 12
		ops     = 150
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard only
	defer cancel()
	meetingIDs := []string{"c1", "c2", "c3", "c4"}
	hosts := []string{"h1", "h2"}
	crowd := []string{"v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8"}
	everyone := append(slices.Clone(hosts), crowd...)

	store := eventstore.NewMemory()
	var engines []*stage.Engine
	conflicts := &countingHandler{}
	for range nEngines {
		// Two engines can keep conflicting on a busy meeting: allow many attempts.
		eng, err := stage.New(store, stage.WithRetry(1000, 50*time.Microsecond, 2*time.Millisecond),
			stage.WithLogger(slog.New(conflicts)))
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		engines = append(engines, eng)
	}
	hostPerms := aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	for _, mt := range meetingIDs {
		for _, h := range hosts {
			if _, err := engines[0].AddParticipant(ctx, mt, aggregate.Participant{UserID: h, Permissions: hostPerms}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// stored counts, per meeting, the commands that appended an event.
	stored := map[string]*atomic.Int64{}
	for _, mt := range meetingIDs {
		stored[mt] = new(atomic.Int64)
		stored[mt].Add(int64(len(hosts)))
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			pick := func(s []string) string { return s[rng.IntN(len(s))] }
			access := func() aggregate.StageAccess {
				return []aggregate.StageAccess{aggregate.Allowed, aggregate.CanRequest, aggregate.CanRequest, aggregate.NotAllowed}[rng.IntN(4)]
			}
			type done struct {
				meeting string
				cmd     aggregate.Command
				version uint64 // 0: the command failed
			}
			var mine []done
			for i := range ops {
				eng := engines[rng.IntN(len(engines))]
				mt := pick(meetingIDs)
				key := fmt.Sprintf("w%d-%d", w, i)
				var cmd aggregate.Command
				retry := -1
				switch r := rng.IntN(20); {
				case r < 2:
					perms := aggregate.Permissions{StageAccess: access()}
					cmd = aggregate.Command{Action: aggregate.AddParticipant{Participant: aggregate.Participant{UserID: pick(crowd), Permissions: perms}}}
				case r < 3:
					cmd = aggregate.Command{Action: aggregate.RemoveParticipant{UserID: pick(crowd)}}
				case r < 4:
					perms := aggregate.Permissions{StageAccess: access()}
					cmd = aggregate.Command{Action: aggregate.UpdatePermissions{UserID: pick(crowd), Permissions: perms}}
				case r < 7:
					cmd = aggregate.Command{Actor: pick(crowd), Action: aggregate.RequestAccess{}}
				case r < 8:
					cmd = aggregate.Command{Actor: pick(crowd), Action: aggregate.CancelRequestAccess{}}
				case r < 10:
					cmd = aggregate.Command{Actor: pick(everyone), Action: aggregate.GrantAccess{Users: []string{pick(crowd), pick(crowd)}}}
				case r < 11:
					cmd = aggregate.Command{Actor: pick(everyone), Action: aggregate.DenyAccess{Users: []string{pick(crowd)}, Reason: "busy"}}
				case r < 14:
					cmd = aggregate.Command{Actor: pick(everyone), Action: aggregate.Join{}}
				case r < 16:
					cmd = aggregate.Command{Actor: pick(everyone), Action: aggregate.Leave{}}
				case r < 17:
					cmd = aggregate.Command{Actor: pick(everyone), Action: aggregate.Kick{Users: []string{pick(crowd), pick(everyone)}}}
				case r < 18:
					cmd = aggregate.Command{Actor: "not valid", Action: aggregate.Join{}}
				default:
					if len(mine) == 0 {
						continue
					}
					retry = rng.IntN(len(mine))
					mt, cmd, key = mine[retry].meeting, mine[retry].cmd, mine[retry].cmd.ID
				}
				cmd.ID = key
				res, err := eng.Execute(ctx, mt, cmd, stage.WithIdempotencyKey(key))
				switch {
				case err != nil:
					if !isRuleError(err) {
						t.Errorf("%s on %s: %v is not a domain error", cmd.Action.Name(), mt, err)
						return
					}
				case res.Duplicate:
					if retry < 0 {
						t.Errorf("%s on %s: a fresh key %s reported as a duplicate", cmd.Action.Name(), mt, key)
					} else if res.Version != mine[retry].version {
						t.Errorf("%s on %s: duplicate of version %d; it was stored at version %d",
							cmd.Action.Name(), mt, res.Version, mine[retry].version)
					}
				default:
					if len(res.Events) != 1 || res.Events[0].CommandID != key || res.Version != res.Events[0].Version {
						t.Errorf("%s on %s: result %+v", cmd.Action.Name(), mt, res)
					}
					stored[mt].Add(1)
				}
				v := uint64(0)
				if err == nil {
					v = res.Version
				}
				if retry >= 0 {
					if !res.Duplicate {
						mine[retry].version = v // decided afresh (it failed before, or left the window)
					}
				} else {
					mine = append(mine, done{meeting: mt, cmd: cmd, version: v})
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d engine(s): %d log records (conflicts retried)", nEngines, conflicts.n.Load())

	for _, mt := range meetingIDs {
		for _, eng := range engines {
			checkMeeting(t, ctx, eng, store, mt, nil)
		}
		var log []events.Envelope
		for e, err := range store.Load(ctx, mt, 1) {
			if err != nil {
				t.Fatal(err)
			}
			log = append(log, e)
		}
		if got, want := int64(len(log)), stored[mt].Load(); got != want {
			t.Errorf("%s: %d events stored, %d commands reported success", mt, got, want)
		}
		mm := checkLegalHistory(t, mt, log)
		r, err := engines[0].Roster(ctx, mt)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Participants) != len(mm.users) {
			t.Errorf("%s: %d participants, the model replays %d", mt, len(r.Participants), len(mm.users))
		}
		for _, p := range r.Participants {
			if u := mm.users[p.UserID]; u == nil || u.status != p.Status {
				t.Errorf("%s: %s is %v, the model replays %+v", mt, p.UserID, p.Status, u)
			}
		}
		t.Logf("%s: %d events; on stage %v, accepted %v, %d requests", mt, len(log), r.OnStage, r.Accepted, len(r.Requests))
	}
}

// countingHandler counts the engine's log records (at any level).
type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// isRuleError reports whether err is one of the domain errors.
func isRuleError(err error) bool {
	for _, kind := range []error{aggregate.ErrPermissionDenied, aggregate.ErrInvalidState, aggregate.ErrNotParticipant, aggregate.ErrInvalidCommand, aggregate.ErrNoMeeting} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

// checkLegalHistory replays a stored log through the model: every event
// must be the outcome of a command the rules allowed at that point, and
// each list event's skipped targets must be the ones the rules exclude.
func checkLegalHistory(t *testing.T, meeting string, log []events.Envelope) *modelMeeting {
	t.Helper()
	mm := newModelMeeting()
	for _, e := range log {
		o := op{actor: e.Actor}
		var skipped []events.Skip
		switch p := e.Payload.(type) {
		case *events.ParticipantJoined:
			o.name, o.user, o.perms = "AddParticipant", p.UserID, p.Permissions
		case *events.ParticipantLeft:
			o.name, o.user = "RemoveParticipant", p.UserID
		case *events.PermissionsChanged:
			o.name, o.user, o.perms = "UpdatePermissions", p.UserID, p.Permissions
		case *events.AccessRequested:
			o.name = "RequestAccess"
		case *events.AccessRequestCancelled:
			o.name = "CancelRequestAccess"
		case *events.AccessGranted:
			o.name, skipped = "GrantAccess", p.Skipped
			o.users = p.Users
		case *events.AccessDenied:
			o.name, skipped = "DenyAccess", p.Skipped
			o.users = p.Users
		case *events.StageJoined:
			o.name = "Join"
		case *events.StageLeft:
			o.name = "Leave"
		case *events.Kicked:
			o.name, skipped = "Kick", p.Skipped
			o.users = p.Users
		}
		for _, s := range skipped {
			o.users = append(o.users, s.UserID)
		}
		out := mm.decide(o, e.CommandID, e.Time, false)
		if out.err != nil {
			t.Fatalf("%s version %d: %s %+v was not allowed: %v", meeting, e.Version, o.name, o, out.err)
		}
		if len(out.rejected) != len(skipped) {
			t.Fatalf("%s version %d: skipped %v, the rules exclude %v", meeting, e.Version, skipped, out.rejected)
		}
		for i, r := range out.rejected {
			if r.user != skipped[i].UserID || aggregate.ErrorForCode(skipped[i].Reason) != r.kind {
				t.Fatalf("%s version %d: skipped %v, the rules exclude %v", meeting, e.Version, skipped, out.rejected)
			}
		}
		if e.Type == events.TypeAccessRequested {
			auto := e.Payload.(*events.AccessRequested).AutoAccepted
			if auto != (mm.users[e.Actor].status == aggregate.AcceptedToJoinStage) {
				t.Fatalf("%s version %d: AutoAccepted %v, but the rules say %v", meeting, e.Version, auto, mm.users[e.Actor].status)
			}
		}
	}
	return mm
}
