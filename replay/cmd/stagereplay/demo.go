package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/projections"
	"github.com/productdb/stage/replay"
)

type demoCmd struct {
	Dir     string `help:"Data directory for the log (default: a new temporary directory). Must not hold a log yet." type:"path"`
	Meeting string `help:"Meeting id." default:"webinar-42"`
	Seed    uint64 `help:"Seed of the crowd's choices: the same seed gives the same webinar." default:"42"`
	Viewers int    `help:"How many viewers join (2-30)." default:"18"`
	Steps   int    `help:"How many crowd moves after the scripted opening." default:"120"`
	Start   string `help:"Simulated start time of the webinar (RFC 3339)." default:"2026-11-29T14:00:00Z"`
	Quiet   bool   `short:"q" help:"Print only the summary and the replay commands."`
}

var viewerNames = []string{"bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "kevin",
	"laura", "mike", "nina", "oscar", "peggy", "quinn", "rita", "sam", "tina", "uma", "victor", "wendy",
	"xavier", "yara", "zack", "amir", "bella", "chen", "dina", "emil"}

var (
	hostPerm    = aggregate.PresetHost.Permissions()
	speakerPerm = aggregate.PresetSpeaker.Permissions()
	viewerPerm  = aggregate.PresetViewer.Permissions()
	blockedPerm = aggregate.PresetViewOnly.Permissions()
)

// demo runs one scripted webinar: a fixed opening that shows every rule,
// then a seeded crowd.
type demo struct {
	ctx     context.Context
	eng     *stage.Engine
	meeting string
	now     time.Time
	rng     *rand.Rand
	out     io.Writer
	hist    *projections.History
	refused int
}

func (c *demoCmd) Run(ctx context.Context, e *env) error {
	if c.Viewers < 2 || c.Viewers > len(viewerNames) {
		return fmt.Errorf("--viewers %d: want 2 to %d", c.Viewers, len(viewerNames))
	}
	start, err := time.Parse(time.RFC3339, c.Start)
	if err != nil {
		return fmt.Errorf("--start: %w", err)
	}
	dir := c.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "stagereplay-demo-"); err != nil {
			return err
		}
	} else if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("--dir %s is not empty: the demo writes a new log; choose a new or empty directory", dir)
	}
	wall := time.Now()
	// The deployment's signing key: the engine signs its snapshots and a
	// checkpoint of the meeting's head on Close, kept in the store and in
	// a file beside it; verify --public-key proves the log against them.
	// (A real deployment keeps the private key away from the data.)
	priv, pubPath, err := demoKey(dir)
	if err != nil {
		return err
	}
	cpFile, err := checkpoint.OpenFile(filepath.Join(dir, "checkpoints.jsonl"))
	if err != nil {
		return err
	}
	defer cpFile.Close()
	dd, err := replay.OpenDataDir(ctx, dir)
	if err != nil {
		return err
	}
	defer dd.Close()

	d := &demo{ctx: ctx, meeting: c.Meeting, now: start, rng: rand.New(rand.NewPCG(c.Seed, 0x5eed)),
		out: e.stdout, hist: projections.NewHistory(c.Meeting)}
	if c.Quiet {
		d.out = io.Discard
	}
	// The clock is simulated: no real timers; the script ticks itself.
	var sinks []checkpoint.Sink
	if cs, ok := dd.Store.(checkpoint.Sink); ok {
		sinks = append(sinks, cs)
	}
	d.eng, err = stage.New(dd.Store, stage.WithClock(func() time.Time { return d.now }), stage.WithAutoTick(false),
		stage.WithSigningKey(priv), stage.WithCheckpoints(time.Minute, append(sinks, cpFile)...))
	if err != nil {
		return err
	}
	defer d.eng.Close()

	// The live projection follows the store while the webinar runs, and
	// turns each event into the notifications a backend would push.
	pushed := map[projections.NotificationType]int{}
	runner, err := projections.NewRunner(dd.Store, projections.WithEventHook(func(before *aggregate.State, e *events.Envelope) {
		for _, n := range projections.Notify(before, e) {
			pushed[n.Type]++
		}
	}))
	if err != nil {
		return err
	}
	rctx, stopRunner := context.WithCancel(ctx)
	defer stopRunner()
	go runner.Run(rctx)

	fmt.Fprintf(e.stdout, "demo: webinar %s in %s (simulated clock from %s, seed %d)\n\n", c.Meeting, dir, start.UTC().Format(time.RFC3339), c.Seed)
	last, err := d.script(c.Viewers, c.Steps)
	if err != nil {
		return err
	}

	// Read your writes: wait for the live projection to reach the last
	// event, then check that replaying the log from its directory gives the
	// very same roster, byte for byte.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := runner.WaitFor(wctx, last); err != nil {
		return fmt.Errorf("live projection: %w", err)
	}
	live, err := runner.Roster(ctx, c.Meeting)
	if err != nil {
		return err
	}
	if err := d.eng.Close(); err != nil { // writes the last checkpoint
		return err
	}
	if err := dd.Close(); err != nil {
		return err
	}
	src, err := replay.Open(ctx, dir)
	if err != nil {
		return err
	}
	defer src.Close()
	replayed, err := replay.Roster(ctx, src, replay.Filter{MeetingID: c.Meeting})
	if err != nil {
		return err
	}
	lj, _ := json.Marshal(live)
	rj, _ := json.Marshal(replayed)
	if !bytes.Equal(lj, rj) {
		return errors.New("demo: the live roster and the replayed roster differ")
	}
	cps, err := replay.ReadCheckpoints(ctx, src)
	if err != nil {
		return err
	}
	rep, err := replay.Verify(ctx, src.Events(ctx, ""), replay.WithCheckpoints(priv.Public().(ed25519.PublicKey), cps))
	if err != nil {
		return err
	}

	h := d.hist
	fmt.Fprintf(e.stdout, "\n%d events in %s of webinar time (%d commands refused, nothing stored for them), written in %s.\n",
		len(h.Entries), projections.FormatDuration(h.End.Sub(h.Start)), d.refused, time.Since(wall).Round(time.Millisecond))
	fmt.Fprintf(e.stdout, "on stage now: %s; waiting: %d\n", list(live.OnStage), len(live.Requests))
	fmt.Fprintf(e.stdout, "live projection and offline replay agree at version %d (identical roster JSON); verify: %s\n",
		live.Version, verdict(rep))
	fmt.Fprintf(e.stdout, "notifications for clients: %d %s, %d %s, %d %s, %d %s, %d %s\n",
		pushed[projections.StageStatusUpdate], projections.StageStatusUpdate,
		pushed[projections.NewStageRequest], projections.NewStageRequest,
		pushed[projections.StageAccessRequestUpdate], projections.StageAccessRequestUpdate,
		pushed[projections.StageRequestApproved], projections.StageRequestApproved,
		pushed[projections.StageRequestRejected], projections.StageRequestRejected)

	mid := h.Start.Add(h.End.Sub(h.Start) / 2).UTC().Format("15:04:05")
	self, q := e.self, quote(dir)
	fmt.Fprintf(e.stdout, "\nReplay it:\n")
	for _, cmd := range []string{
		"roster   " + q + " --at " + mid,
		"requests " + q + " --version " + fmt.Sprint(live.Version/3),
		"history  " + q + " --user bob",
		"timeline " + q + " -o timeline.svg",
		"whatif   " + q + " --set MaxOnStage=2 --set InvitationTTL=30s",
		"verify   " + q + " --public-key " + quote(pubPath),
		"export   " + q + " -o " + c.Meeting + ".jsonl",
	} {
		fmt.Fprintf(e.stdout, "  %s %s\n", self, cmd)
	}
	return nil
}

func verdict(r *replay.Report) string {
	if !r.OK() {
		return fmt.Sprintf("%d findings", len(r.Findings))
	}
	if r.Proof == nil {
		return "clean"
	}
	proven, unproven := r.Proof.ProvenEvents()
	return fmt.Sprintf("clean, %d of %d events proven by signed checkpoints", proven, proven+unproven)
}

// demoKey writes a new signing key pair into dir and returns the private
// key and the public key's path.
func demoKey(dir string) (ed25519.PrivateKey, string, error) {
	privPEM, pubPEM, err := checkpoint.GenerateKey()
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	pubPath := filepath.Join(dir, "signing-key.pub")
	if err := os.WriteFile(filepath.Join(dir, "signing-key.pem"), privPEM, 0o600); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(pubPath, pubPEM, 0o644); err != nil {
		return nil, "", err
	}
	priv, err := checkpoint.ParsePrivateKey(privPEM)
	return priv, pubPath, err
}

func quote(s string) string {
	if strings.ContainsAny(s, " '\"\\$`") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}

// tick advances the simulated clock by lo..hi seconds.
func (d *demo) tick(lo, hi int) {
	d.now = d.now.Add(time.Duration(lo+d.rng.IntN(hi-lo+1)) * time.Second)
}

// do runs one command, prints what the log now says (or why it was
// refused), and returns the store position of its event (0 if refused).
func (d *demo) do(actor string, a aggregate.Action) (uint64, error) {
	res, err := d.eng.Execute(d.ctx, d.meeting, aggregate.Command{Actor: actor, Action: a})
	// A Join on a full stage is stored (SeatWaitlisted) and fails: print
	// what was stored, then why the command failed.
	for i := range res.Events {
		d.hist.Apply(&res.Events[i])
		en := d.hist.Entries[len(d.hist.Entries)-1]
		fmt.Fprintf(d.out, "%s %s\n", clock(en.Time), en.Text)
	}
	var rej *aggregate.Error
	if errors.As(err, &rej) {
		if len(res.Events) == 0 {
			d.refused++
		}
		who := actor
		if who == "" {
			who = "the backend"
		}
		fmt.Fprintf(d.out, "%s refused: %s's %s (%s: %s)\n", clock(d.now), who, a.Name(), aggregate.ReasonCode(err), rej.Reason)
		return res.Seq, nil
	}
	if err != nil {
		return 0, err
	}
	return res.Seq, nil
}

// script runs the webinar and returns the position of the last event.
func (d *demo) script(viewers, steps int) (uint64, error) {
	var last uint64
	var err error
	run := func(actor string, a aggregate.Action) {
		if err != nil {
			return
		}
		var p uint64
		if p, err = d.do(actor, a); p > 0 {
			last = p
		}
	}
	add := func(u string, p aggregate.Permissions) {
		run("", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: u, Permissions: p}})
	}
	vs := viewerNames[:viewers]
	bob, carol, dave, erin, frank := vs[0], vs[1], vs[min(2, len(vs)-1)], vs[min(3, len(vs)-1)], vs[min(4, len(vs)-1)]

	// Opening: the stage starts backstage; hosts and speakers prepare.
	add("alice", hostPerm)
	add("hassan", hostPerm)
	run("hassan", aggregate.Configure{Settings: events.Settings{StartBackstage: true}})
	run("alice", aggregate.Join{})
	d.tick(5, 10)
	add("sofia", speakerPerm)
	add("tom", speakerPerm)
	run("sofia", aggregate.RequestAccess{})
	d.tick(2, 4)
	run("sofia", aggregate.Join{})
	run("tom", aggregate.Join{})
	// The audience arrives.
	for _, v := range vs {
		d.tick(1, 6)
		add(v, viewerPerm)
	}
	add("eve", blockedPerm)
	add("maria", viewerPerm)
	d.tick(10, 20)
	run(bob, aggregate.RequestAccess{}) // backstage: refused
	run("alice", aggregate.PromoteCoHost{UserID: "maria"})
	d.tick(50, 70)
	run("alice", aggregate.StartStage{})
	d.tick(5, 10)

	// Q&A opens: every rule once.
	run(bob, aggregate.RequestAccess{})
	d.tick(5, 10)
	run(carol, aggregate.RequestAccess{})
	d.tick(3, 6)
	run("eve", aggregate.RequestAccess{})                    // NotAllowed: refused
	run(dave, aggregate.Join{})                              // not accepted: refused
	run(dave, aggregate.GrantAccess{Users: []string{carol}}) // not a host: refused
	d.tick(25, 35)
	run("maria", aggregate.GrantAccess{Users: []string{bob}}) // the co-host
	d.tick(4, 8)
	run(bob, aggregate.Join{})
	d.tick(10, 20)
	run("hassan", aggregate.DenyAccess{Users: []string{carol}, Reason: "off topic"})
	d.tick(5, 10)
	run(erin, aggregate.RequestAccess{})
	d.tick(20, 30)
	run(erin, aggregate.CancelRequestAccess{})
	d.tick(5, 10)
	run("alice", aggregate.GrantAccess{Users: []string{frank}}) // an invitation
	d.tick(10, 15)
	run(frank, aggregate.DeclineInvitation{})
	d.tick(60, 120)
	run("tom", aggregate.Leave{})
	d.tick(90, 150)
	run("hassan", aggregate.Kick{Users: []string{bob, "sofia", erin}, Reason: "time's up"})
	d.tick(10, 20)
	run("", aggregate.UpdatePermissions{UserID: carol, Permissions: speakerPerm}) // promoted
	run(carol, aggregate.Join{})
	d.tick(30, 60)
	run(carol, aggregate.Leave{})

	// The hosts turn policies on: seats, invitations, seat offers and
	// requests that lapse, a cooldown after a denial, a grace for dropped
	// connections, and hosts may bring users on stage.
	d.tick(20, 40)
	run("hassan", aggregate.Configure{Settings: events.Settings{MaxOnStage: 3, SeatOfferTTL: time.Minute,
		InvitationTTL: 3 * time.Minute, RequestCooldown: time.Minute, ReconnectGrace: time.Minute,
		RequestTTL: 4 * time.Minute, AllowBringOnStage: true}})
	d.tick(5, 10)
	run("hassan", aggregate.BanFromStage{UserID: dave, Until: d.now.Add(5 * time.Minute)})
	run(dave, aggregate.RequestAccess{}) // banned: refused
	d.tick(10, 20)
	run("", aggregate.Disconnect{UserID: erin})
	d.tick(15, 30)
	run("", aggregate.Reconnect{UserID: erin})
	d.tick(5, 10)
	run("hassan", aggregate.BringOnStage{UserID: erin})

	// The crowd: seeded, so the same seed gives the same webinar.
	for i := 0; i < steps && err == nil; i++ {
		d.tick(4, 30)
		d.crowdMove(vs, run)
	}

	// Closing: requests close (the pending ones denied), the co-host
	// steps down, and the stage ends for everyone in one event.
	d.tick(30, 60)
	run("hassan", aggregate.CloseRequests{DenyPending: true})
	d.tick(5, 10)
	run("alice", aggregate.DemoteCoHost{UserID: "maria"})
	d.tick(20, 40)
	run("alice", aggregate.EndStage{})
	d.tick(120, 180)
	run("", aggregate.Tick{}) // record the deadlines that passed since
	return last, err
}

// crowdMove makes one random, usually legal, move.
func (d *demo) crowdMove(vs []string, run func(string, aggregate.Action)) {
	s := d.hist.State()
	by := func(st aggregate.Status) []string {
		var out []string
		for _, v := range vs {
			if s.Status(v) == st {
				out = append(out, v)
			}
		}
		return out
	}
	pick := func(xs []string) string { return xs[d.rng.IntN(len(xs))] }
	host := pick([]string{"alice", "hassan"})
	off, accepted, on := by(aggregate.OffStage), by(aggregate.AcceptedToJoinStage), by(aggregate.OnStage)
	queue := s.Queue()
	if len(accepted) > 0 && d.rng.IntN(3) == 0 {
		u := pick(accepted)
		if d.rng.IntN(8) == 0 {
			run(u, aggregate.Leave{}) // declines
		} else {
			run(u, aggregate.Join{}) // may find the stage full: waitlisted
		}
		return
	}
	switch r := d.rng.IntN(100); {
	case r < 28 && len(off) > 0:
		run(pick(off), aggregate.RequestAccess{})
	case r < 48 && len(queue) > 0 && len(on)+len(accepted) < 5:
		run(host, aggregate.GrantAccess{Users: []string{queue[0].UserID}})
	case r < 54 && len(queue) > 0:
		run(host, aggregate.DenyAccess{Users: []string{queue[d.rng.IntN(len(queue))].UserID}})
	case r < 70 && len(accepted) > 0:
		u := pick(accepted)
		if d.rng.IntN(8) == 0 {
			run(u, aggregate.Leave{}) // declines
		} else {
			run(u, aggregate.Join{})
		}
	case r < 82 && len(on) > 0:
		run(pick(on), aggregate.Leave{})
	case r < 86 && len(on) > 0:
		run(host, aggregate.Kick{Users: []string{pick(on)}})
	case r < 91 && len(queue) > 0:
		run(queue[d.rng.IntN(len(queue))].UserID, aggregate.CancelRequestAccess{})
	case r < 92 && d.rng.IntN(3) == 0:
		run(pick(vs), aggregate.Join{}) // often refused
	case r < 94 && len(off) > 2:
		u := pick(off)
		run("", aggregate.RemoveParticipant{UserID: u})
		d.tick(20, 60)
		run("", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: u, Permissions: viewerPerm}})
	default:
		// A quiet moment.
	}
}
