package projections

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// allTransitions is step without the shortcut: every participant before
// and after is compared.
func allTransitions(s *aggregate.State, e *events.Envelope) []transition {
	before := map[string]aggregate.Status{}
	for _, m := range s.Members() {
		before[m.UserID] = m.Status
	}
	aggregate.Evolve(s, e)
	after := map[string]aggregate.Status{}
	for _, m := range s.Members() {
		after[m.UserID] = m.Status
	}
	users := slices.Sorted(maps.Keys(before))
	for u := range after {
		if _, ok := before[u]; !ok {
			users = append(users, u)
		}
	}
	slices.Sort(users)
	var out []transition
	for _, u := range users {
		if before[u] != after[u] {
			out = append(out, transition{UserID: u, From: before[u], To: after[u]})
		}
	}
	return out
}

// Random commands of every kind, the stage controls and the policies
// among them, decided by the rules: (1) the status changes step finds
// from the users an event names are those of comparing every
// participant; (2) a client that holds what everyone is told (the stage
// roster, the co-hosts, the phase, the requests switch) and each user's
// own status, from the notifications alone, holds the state after every
// event.
func TestNotifyStep_namedUsersAndClientModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := aggregate.NewState("m")
		now := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
		users := []string{"h1", "h2", "v1", "v2", "v3", "v4", "v5"}
		hostP := aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
		perms := []aggregate.Permissions{hostP, {StageAccess: aggregate.Allowed}, {StageAccess: aggregate.CanRequest}, {StageAccess: aggregate.NotAllowed}}
		// The client.
		status := map[string]aggregate.Status{}
		onStage := map[string]bool{}
		coHosts := map[string]bool{}
		phase, requestsOpen := aggregate.PhaseLive, true
		n := 0
		do := func(actor string, a aggregate.Action) {
			n++
			d, err := aggregate.Decide(s, aggregate.Command{ID: fmt.Sprint("c", n), Actor: actor, Action: a}, now)
			if err != nil {
				return
			}
			for i := range d.Events {
				e := &d.Events[i]
				full := allTransitions(s.Clone(), e)
				ts := step(s.Clone(), e)
				for j := range ts {
					ts[j].Invited, ts[j].CoHost = false, false
				}
				if !slices.Equal(ts, full) {
					t.Fatalf("version %d %s: step %+v, every participant %+v", e.Version, e.Type, ts, full)
				}
				for _, no := range NotifyStep(s, e) {
					switch no.Type {
					case StageStatusUpdate:
						if no.Recipient != no.UserID {
							t.Fatalf("%s: status update of %s to %s", e.Type, no.UserID, no.Recipient)
						}
						status[no.UserID] = no.Status
					case StageRosterUpdate:
						for _, c := range no.Stage {
							onStage[c.UserID] = c.Change == StageEntered
						}
						for _, r := range no.Roles {
							coHosts[r.UserID] = r.Role == RoleCoHost
						}
						if no.OnStage != s.OnStageCount() {
							t.Fatalf("%s: onStage %d, state %d", e.Type, no.OnStage, s.OnStageCount())
						}
					case StagePhaseUpdate:
						if no.Phase == phase {
							t.Fatalf("%s: phase update to the same phase %s", e.Type, phase)
						}
						phase = no.Phase
					case StageRequestsClosed, StageRequestsOpened:
						if open := no.Type == StageRequestsOpened; open == requestsOpen {
							t.Fatalf("%s: %s while requests open is %v", e.Type, no.Type, requestsOpen)
						}
						requestsOpen = no.Type == StageRequestsOpened
					case NewStageRequest, StageAccessRequestUpdate, StageInvitationDeclined:
						if m, ok := s.Member(no.Recipient); !ok || !m.IsModerator() {
							t.Fatalf("%s: %s to %s, not a moderator", e.Type, no.Type, no.Recipient)
						}
					}
				}
				for _, m := range s.Members() {
					if status[m.UserID] != m.Status {
						t.Fatalf("after version %d %s: %s holds %s, the state %s", e.Version, e.Type, m.UserID, status[m.UserID], m.Status)
					}
					if onStage[m.UserID] != (m.Status == aggregate.OnStage) {
						t.Fatalf("after version %d %s: the client has %s on stage %v, the state %s", e.Version, e.Type, m.UserID, onStage[m.UserID], m.Status)
					}
				}
				var cs []string
				for u, c := range coHosts {
					if c {
						cs = append(cs, u)
					}
				}
				slices.Sort(cs)
				if want := s.CoHosts(); !slices.Equal(cs, want) && !(len(cs) == 0 && len(want) == 0) {
					t.Fatalf("after version %d %s: the client's co-hosts %v, the state's %v", e.Version, e.Type, cs, want)
				}
				if open, _ := s.RequestsOpen(); phase != s.Phase() || requestsOpen != open {
					t.Fatalf("after version %d %s: the client's phase %s, requests open %v; the state's %s, %v", e.Version, e.Type, phase, requestsOpen, s.Phase(), open)
				}
			}
		}
		for i, u := range users {
			p := aggregate.Permissions{StageAccess: aggregate.CanRequest}
			if i < 2 {
				p = hostP
			}
			do("", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: u, Permissions: p}})
		}
		dur := rapid.SampledFrom([]time.Duration{0, 0, 5 * time.Second, time.Minute})
		for range rapid.IntRange(10, 80).Draw(t, "steps") {
			u := rapid.SampledFrom(users).Draw(t, "user")
			h := rapid.SampledFrom([]string{"h1", "h1", "h2", "v1", "v2", "v3"}).Draw(t, "host")
			var a aggregate.Action
			actor := h
			switch rapid.IntRange(0, 24).Draw(t, "action") {
			case 0, 1:
				actor, a = u, aggregate.RequestAccess{}
			case 2:
				actor, a = u, aggregate.CancelRequestAccess{}
			case 3:
				a = aggregate.GrantAccess{Users: []string{u}}
			case 4:
				a = aggregate.DenyAccess{Users: []string{u}}
			case 5:
				actor, a = u, aggregate.Join{}
			case 6:
				actor, a = u, aggregate.Leave{}
			case 7:
				a = aggregate.Kick{Users: []string{u}}
			case 8:
				actor, a = "", aggregate.RemoveParticipant{UserID: u}
			case 9:
				actor, a = "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: u, Permissions: rapid.SampledFrom(perms).Draw(t, "perm")}}
			case 10:
				actor, a = "", aggregate.UpdatePermissions{UserID: u, Permissions: rapid.SampledFrom(perms).Draw(t, "perm")}
			case 11:
				a = aggregate.Configure{Settings: aggregate.Settings{
					MaxOnStage: rapid.IntRange(0, 3).Draw(t, "max"), SeatOfferTTL: dur.Draw(t, "offer"),
					InvitationTTL: dur.Draw(t, "invitation"), SpeakingSlot: dur.Draw(t, "slot"),
					RequestTTL: dur.Draw(t, "requestTTL"), ReconnectGrace: dur.Draw(t, "grace"),
					StartBackstage: rapid.Bool().Draw(t, "backstage"), AllowBringOnStage: rapid.Bool().Draw(t, "bring")}}
			case 12:
				a = aggregate.BanFromStage{UserID: u}
			case 13:
				a = aggregate.LiftBan{UserID: u}
			case 14:
				actor, a = "", aggregate.Disconnect{UserID: u}
			case 15:
				actor, a = "", aggregate.Reconnect{UserID: u}
			case 16:
				actor, a = "", aggregate.Tick{}
			case 17:
				a = aggregate.StartStage{}
			case 18:
				a = aggregate.EndStage{}
			case 19:
				a = aggregate.CloseRequests{DenyPending: rapid.Bool().Draw(t, "deny")}
			case 20:
				a = aggregate.OpenRequests{}
			case 21:
				a = aggregate.PromoteCoHost{UserID: u}
			case 22:
				if cs := s.CoHosts(); len(cs) > 0 {
					u = rapid.SampledFrom(cs).Draw(t, "coHost")
				}
				a = aggregate.DemoteCoHost{UserID: u}
			case 23:
				actor, a = u, aggregate.DeclineInvitation{}
			case 24:
				a = aggregate.BringOnStage{UserID: u}
			}
			do(actor, a)
			now = now.Add(dur.Draw(t, "tick"))
		}
	})
}
