package aggregate_test

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

var update = flag.Bool("update", false, "rewrite testdata/scenarios/*.txt with the actual output")

// TestScenarios runs the transcripts in testdata/scenarios: stories told as
// commands and what the stage does with them. Each block is a command, a
// line "----", and the expected output up to a blank line:
//
//	add alice host              the backend adds a participant with a preset
//	remove alice                ... removes one
//	perms alice banned          ... changes their permissions
//	alice request               alice's own commands: request, cancel, join, leave
//	alice grant bob carol       a list command: grant, deny, kick
//	again                       the previous command again, same idempotency key
//	alice start / end           the stage's phases: StartStage, EndStage
//	alice close-requests [deny] CloseRequests (deny: DenyPending); open-requests
//	alice promote bob           PromoteCoHost; demote: DemoteCoHost
//	bob decline                 DeclineInvitation
//	alice bring bob             BringOnStage
//	alice configure k=v ...     Configure: max=N, requestTTL=D, invitationTTL=D,
//	                            cooldown=D, backstage, bring (flags on)
//	wait 2m                     the clock moves on 2m, then a Tick
//
// Presets: host (Allowed + host), cohost (CanRequest + host), viewer
// (CanRequest), speaker (Allowed), banned (NotAllowed). The output shows the
// event (or the error's kind and user), the ineligible targets, every status
// that changed and the queue when it changed. Lines starting with # are
// comments. The stage's phase, the requests switch and the co-hosts are
// shown when they change. Run with -update to rewrite the expected output.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenario(t, f) })
	}
}

var presets = map[string]aggregate.Permissions{
	"host": hostPerms, "cohost": cohostPerms, "viewer": viewerPerms, "speaker": speakerPerms, "banned": bannedPerms,
}

func runScenario(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	s := aggregate.NewState("scenario")
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	var last aggregate.Command
	var out []string
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" || strings.HasPrefix(line, "#") {
			out = append(out, line)
			continue
		}
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s:%d: command %q not followed by ----", path, i+1, line)
		}
		j := i + 2
		for j < len(lines) && lines[j] != "" {
			j++
		}
		want := lines[i+2 : j]

		now = now.Add(time.Second)
		if f := strings.Fields(line); f[0] == "wait" && len(f) == 2 {
			d, err := time.ParseDuration(f[1])
			if err != nil {
				t.Fatalf("%s:%d: %v", path, i+1, err)
			}
			now = now.Add(d)
		}
		cmd, err := parseCommand(line, fmt.Sprintf("line-%d", i+1), last)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, i+1, err)
		}
		last = cmd
		got := step(t, s, cmd, now)
		if !*update && !slices.Equal(got, want) {
			t.Errorf("%s:%d: %s\n got:\n\t%s\nwant:\n\t%s", path, i+1, line,
				strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
		}
		out = append(out, line, "----")
		out = append(out, got...)
		i = j - 1
	}
	if *update {
		if err := os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func parseCommand(line, id string, last aggregate.Command) (aggregate.Command, error) {
	f := strings.Fields(line)
	if f[0] == "again" {
		if last.ID == "" {
			return last, fmt.Errorf("again: no previous command")
		}
		return last, nil
	}
	c := aggregate.Command{ID: id}
	preset := func() (aggregate.Permissions, error) {
		if len(f) != 3 {
			return aggregate.Permissions{}, fmt.Errorf("want: %s USER PRESET", f[0])
		}
		p, ok := presets[f[2]]
		if !ok {
			return p, fmt.Errorf("unknown preset %q", f[2])
		}
		return p, nil
	}
	switch f[0] {
	case "add":
		p, err := preset()
		c.Action = aggregate.AddParticipant{Participant: aggregate.Participant{UserID: f[1], Permissions: p}}
		return c, err
	case "perms":
		p, err := preset()
		c.Action = aggregate.UpdatePermissions{UserID: f[1], Permissions: p}
		return c, err
	case "remove":
		c.Action = aggregate.RemoveParticipant{UserID: f[1]}
		return c, nil
	case "wait":
		c.Action = aggregate.Tick{}
		return c, nil
	}
	if len(f) < 2 {
		return c, fmt.Errorf("want: ACTOR COMMAND [USERS...]")
	}
	c.Actor = f[0]
	users := f[2:]
	switch f[1] {
	case "request":
		c.Action = aggregate.RequestAccess{}
	case "cancel":
		c.Action = aggregate.CancelRequestAccess{}
	case "join":
		c.Action = aggregate.Join{}
	case "leave":
		c.Action = aggregate.Leave{}
	case "grant":
		c.Action = aggregate.GrantAccess{Users: users}
	case "deny":
		c.Action = aggregate.DenyAccess{Users: users}
	case "kick":
		c.Action = aggregate.Kick{Users: users}
	case "start":
		c.Action = aggregate.StartStage{}
	case "end":
		c.Action = aggregate.EndStage{}
	case "close-requests":
		c.Action = aggregate.CloseRequests{DenyPending: len(users) == 1 && users[0] == "deny"}
	case "open-requests":
		c.Action = aggregate.OpenRequests{}
	case "promote":
		c.Action = aggregate.PromoteCoHost{UserID: users[0]}
	case "demote":
		c.Action = aggregate.DemoteCoHost{UserID: users[0]}
	case "decline":
		c.Action = aggregate.DeclineInvitation{}
	case "bring":
		c.Action = aggregate.BringOnStage{UserID: users[0]}
	case "configure":
		var st aggregate.Settings
		for _, kv := range users {
			k, v, _ := strings.Cut(kv, "=")
			var d time.Duration
			if v != "" && k != "max" {
				var err error
				if d, err = time.ParseDuration(v); err != nil {
					return c, err
				}
			}
			switch k {
			case "max":
				if _, err := fmt.Sscan(v, &st.MaxOnStage); err != nil {
					return c, err
				}
			case "requestTTL":
				st.RequestTTL = d
			case "invitationTTL":
				st.InvitationTTL = d
			case "cooldown":
				st.RequestCooldown = d
			case "backstage":
				st.StartBackstage = true
			case "bring":
				st.AllowBringOnStage = true
			default:
				return c, fmt.Errorf("unknown setting %q", k)
			}
		}
		c.Action = aggregate.Configure{Settings: st}
	default:
		return c, fmt.Errorf("unknown command %q", f[1])
	}
	return c, nil
}

// step decides and applies cmd, and describes what happened.
func step(t *testing.T, s *aggregate.State, cmd aggregate.Command, now time.Time) []string {
	before := s.Clone()
	d, err := aggregate.Decide(s, cmd, now)
	if err != nil {
		var ae *aggregate.Error
		who := ""
		if errors.As(err, &ae) && ae.UserID != "" {
			who = " (" + ae.UserID + ")"
		}
		return []string{"error: " + aggregate.ReasonCode(err) + who}
	}
	if d.Duplicate {
		return []string{fmt.Sprintf("duplicate of v%d", d.Last)}
	}
	var out []string
	for i := range d.Events {
		e := &d.Events[i]
		seal(t, e, s.LastHash())
		aggregate.Evolve(s, e)
		line := fmt.Sprintf("v%d %s", e.Version, e.Type)
		switch p := e.Payload.(type) {
		case *events.AccessGranted:
			line += " " + strings.Join(e.Users(), " ")
			if len(p.Invited) > 0 {
				line += " (invited: " + strings.Join(p.Invited, " ") + ")"
			}
		case *events.AccessDenied, *events.Kicked, *events.CoHostPromoted, *events.CoHostDemoted, *events.BroughtOnStage:
			line += " " + strings.Join(e.Users(), " ")
		case *events.StageEnded:
			line += fmt.Sprintf(" (on stage: %v, accepted: %v, requests: %v)", p.OnStage, p.Accepted, p.Requests)
		case *events.RequestsClosed:
			if p.DenyPending {
				line += fmt.Sprintf(" (denied: %v)", p.Denied)
			}
		case *events.InvitationDeclined:
			if p.Invited {
				line += " (an invitation)"
			}
		case *events.Lapsed:
			for _, l := range p.Lapses {
				line += " " + string(l.Kind) + ":" + l.UserID
			}
		case *events.AccessRequested:
			if p.AutoAccepted {
				line += " (auto-accepted)"
			}
		case *events.StageLeft:
			if p.Declined {
				line += " (declined)"
			}
		}
		out = append(out, line)
	}
	for _, r := range d.Rejected {
		out = append(out, "rejected: "+r.UserID+" "+aggregate.ReasonCode(r.Err))
	}
	names := map[string]bool{}
	for _, m := range append(before.Members(), s.Members()...) {
		names[m.UserID] = true
	}
	for _, u := range slices.Sorted(maps.Keys(names)) {
		if a, b := before.Status(u), s.Status(u); a != b {
			out = append(out, fmt.Sprintf("%s: %v -> %v", u, a, b))
		}
	}
	if a, b := before.Phase(), s.Phase(); a != b {
		out = append(out, fmt.Sprintf("stage: %v -> %v", a, b))
	}
	openBefore, _ := before.RequestsOpen()
	if open, _ := s.RequestsOpen(); open != openBefore {
		out = append(out, fmt.Sprintf("requests open: %v -> %v", openBefore, open))
	}
	if a, b := before.CoHosts(), s.CoHosts(); !slices.Equal(a, b) {
		out = append(out, fmt.Sprintf("co-hosts: %v", b))
	}
	if q, qb := queue(s), queue(before); !slices.Equal(q, qb) {
		if len(q) == 0 {
			q = []string{"(empty)"}
		}
		out = append(out, "queue: "+strings.Join(q, " "))
	}
	return out
}
