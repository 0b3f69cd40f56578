package projections_test

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/projections"
)

// notifyCase is one row group of docs/notifications.md: the commands that
// set it up (their notifications are not checked) and the one whose
// notifications the rows list.
type notifyCase struct {
	name  string
	setup []func(f *fixture)
	step  func(f *fixture) stage.Result
}

func run(actor string, a aggregate.Action) func(f *fixture) stage.Result {
	return func(f *fixture) stage.Result { return f.do(time.Second, "m", actor, a) }
}

func setup(actor string, a aggregate.Action) func(f *fixture) {
	return func(f *fixture) { f.do(time.Second, "m", actor, a) }
}

var speaker = aggregate.Permissions{StageAccess: aggregate.Allowed}

// notifyCases is the script of docs/notifications.md, one meeting, in order:
// alice and hank are hosts, bob, carol and dave viewers who may request,
// erin and sam speakers who may join directly.
var notifyCases = []notifyCase{
	{name: "add", step: run("", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "sam", Permissions: speaker}})},
	{name: "request", step: run("bob", aggregate.RequestAccess{})},
	{name: "approve", step: run("alice", aggregate.GrantAccess{Users: []string{"bob"}})},
	{name: "join", step: run("bob", aggregate.Join{})},
	{name: "invite", step: run("alice", aggregate.GrantAccess{Users: []string{"carol"}})},
	{name: "decline", step: run("carol", aggregate.Leave{})},
	{name: "join-direct", step: run("erin", aggregate.Join{})},
	{name: "leave-stage", step: run("erin", aggregate.Leave{})},
	{name: "kick", step: run("alice", aggregate.Kick{Users: []string{"bob"}, Reason: "off topic"})},
	{name: "deny", setup: []func(*fixture){setup("carol", aggregate.RequestAccess{})},
		step: run("hank", aggregate.DenyAccess{Users: []string{"carol"}, Reason: "not now"})},
	{name: "cancel", setup: []func(*fixture){setup("dave", aggregate.RequestAccess{})},
		step: run("dave", aggregate.CancelRequestAccess{})},
	{name: "remove-on-stage", setup: []func(*fixture){setup("erin", aggregate.Join{})},
		step: run("", aggregate.RemoveParticipant{UserID: "erin"})},
	{name: "remove-requested", setup: []func(*fixture){setup("dave", aggregate.RequestAccess{})},
		step: run("", aggregate.RemoveParticipant{UserID: "dave"})},
	{name: "revoke", setup: []func(*fixture){setup("carol", aggregate.RequestAccess{})},
		step: run("", aggregate.UpdatePermissions{UserID: "carol", Permissions: aggregate.Permissions{StageAccess: aggregate.NotAllowed}})},
	{name: "auto-accept", step: run("alice", aggregate.RequestAccess{})},
	{name: "slot-ended", setup: []func(*fixture){
		setup("alice", aggregate.Configure{Settings: aggregate.Settings{SpeakingSlot: time.Minute}}),
		setup("sam", aggregate.Join{})},
		step: func(f *fixture) stage.Result {
			f.now = f.now.Add(2 * time.Minute)
			r, err := f.eng.Tick(f.ctx, "m")
			if err != nil {
				f.t.Fatal(err)
			}
			return r
		}},
	{name: "promote", step: run("alice", aggregate.PromoteCoHost{UserID: "bob"})},
	{name: "request-moderators", step: run("fay", aggregate.RequestAccess{})},
	{name: "request-expired", setup: []func(*fixture){
		setup("alice", aggregate.Configure{Settings: aggregate.Settings{RequestTTL: time.Minute}})},
		step: func(f *fixture) stage.Result {
			f.now = f.now.Add(2 * time.Minute)
			r, err := f.eng.Tick(f.ctx, "m")
			if err != nil {
				f.t.Fatal(err)
			}
			return r
		}},
	{name: "grant-both", setup: []func(*fixture){
		setup("alice", aggregate.Configure{Settings: aggregate.Settings{}}), setup("fay", aggregate.RequestAccess{})},
		step: run("alice", aggregate.GrantAccess{Users: []string{"fay", "gus"}})},
	{name: "decline-invitation", step: run("gus", aggregate.DeclineInvitation{})},
	{name: "decline-approval", step: run("fay", aggregate.DeclineInvitation{})},
	{name: "close-deny", setup: []func(*fixture){setup("fay", aggregate.RequestAccess{})},
		step: run("alice", aggregate.CloseRequests{DenyPending: true})},
	{name: "open", step: run("alice", aggregate.OpenRequests{})},
	{name: "bring", setup: []func(*fixture){
		setup("alice", aggregate.Configure{Settings: aggregate.Settings{AllowBringOnStage: true}})},
		step: run("alice", aggregate.BringOnStage{UserID: "gus"})},
	{name: "demote", step: run("alice", aggregate.DemoteCoHost{UserID: "bob"})},
	{name: "backstage", step: run("alice", aggregate.Configure{Settings: aggregate.Settings{AllowBringOnStage: true, StartBackstage: true}})},
	{name: "start", step: run("alice", aggregate.StartStage{})},
	{name: "end", setup: []func(*fixture){setup("fay", aggregate.RequestAccess{})},
		step: run("alice", aggregate.EndStage{})},
}

// envelope are the JSON fields every notification has, left out of the
// table's last column.
var envelope = []string{"id", "type", "recipient", "meeting", "version", "seq", "time", "actor"}

// carried renders n's JSON without the envelope fields, in field order.
func carried(t *testing.T, n projections.Notification) string {
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	if _, err := d.Token(); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(envelope, k.(string)) {
			parts = append(parts, `"`+k.(string)+`":`+string(v))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// notifyRows runs the script and renders its rows: case, type, recipients
// (consecutive notifications alike but for the recipient share a row;
// Everyone is "everyone"), carried fields.
func notifyRows(t *testing.T) [][4]string {
	f := newFixture(t)
	f.add("m", "alice", host)
	f.add("m", "hank", host)
	f.add("m", "bob", viewer)
	f.add("m", "carol", viewer)
	f.add("m", "dave", viewer)
	f.add("m", "erin", speaker)
	f.add("m", "fay", viewer)
	f.add("m", "gus", viewer)
	var rows [][4]string
	for _, c := range notifyCases {
		for _, s := range c.setup {
			s(f)
		}
		res := c.step(f)
		evs := f.events("m")
		before, err := projections.Fold("m", func(yield func(events.Envelope, error) bool) {
			for _, e := range evs[:len(evs)-len(res.Events)] {
				if !yield(e, nil) {
					return
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := range res.Events {
			e := &res.Events[i]
			for j, n := range projections.NotifyStep(before, e) {
				if want := (projections.NotificationID{Version: e.Version, Index: j}).String(); n.ID != want {
					t.Errorf("%s: notification %d of version %d has id %q, want %q", c.name, j, e.Version, n.ID, want)
				}
				to := n.Recipient
				if to == projections.Everyone {
					to = "everyone"
				}
				row := [4]string{c.name, string(n.Type), to, carried(t, n)}
				if k := len(rows) - 1; k >= 0 && rows[k][0] == row[0] && rows[k][1] == row[1] && rows[k][3] == row[3] {
					rows[k][2] += ", " + to
					continue
				}
				rows = append(rows, row)
			}
		}
	}
	return rows
}

// docRows reads the table of docs/notifications.md.
func docRows(t *testing.T) [][4]string {
	b, err := os.ReadFile("../docs/notifications.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows [][4]string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "| Case "):
			in = true
			continue
		case in && strings.HasPrefix(line, "|--"), in && strings.HasPrefix(line, "| --"):
			continue
		case in && strings.HasPrefix(line, "|"):
		default:
			in = false
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4 {
			t.Fatalf("table row with %d cells: %s", len(cells), line)
		}
		var row [4]string
		for i, c := range cells {
			row[i] = strings.Trim(strings.TrimSpace(c), "`")
		}
		rows = append(rows, row)
	}
	return rows
}

// TestNotify_docTable: every row of the table in docs/notifications.md is
// what Notify gives for its case, and every notification of the cases has
// its row.
func TestNotify_docTable(t *testing.T) {
	got, want := notifyRows(t), docRows(t)
	if len(want) == 0 {
		t.Fatal("no table in docs/notifications.md")
	}
	for i := range max(len(got), len(want)) {
		var g, w [4]string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("row %d:\n doc  | %s |\n code | %s |", i+1, strings.Join(w[:], " | "), strings.Join(g[:], " | "))
		}
	}
}

// notificationTypes returns the values of the NotificationType constants
// declared in notify.go, read from the source: a type added there is in
// the list without a change here.
func notificationTypes(t *testing.T) []string {
	f, err := parser.ParseFile(token.NewFileSet(), "notify.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, sp := range g.Specs {
			v := sp.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "NotificationType" {
				continue
			}
			for _, val := range v.Values {
				if lit, ok := val.(*ast.BasicLit); ok {
					out = append(out, strings.Trim(lit.Value, `"`))
				}
			}
		}
	}
	if len(out) < 8 {
		t.Fatalf("found %d NotificationType constants in notify.go: %v", len(out), out)
	}
	return out
}

// notTabled are the event types the script of docs/notifications.md does
// not run: policy events whose notifications are a stageStatusUpdate like
// the rows shown (StageBanned), or none (the others change no status).
var notTabled = []events.Type{events.TypeSeatWaitlisted, events.TypeStageBanned, events.TypeBanLifted,
	events.TypeDisconnected, events.TypeReconnected}

// TestNotify_docTableCoversEverything: every notification type (but live,
// which no event causes) has its row in the "What each carries" table and
// is in the script's rows, and every event type (but notTabled) causes a
// row: a type or event added without its row in the doc fails here.
func TestNotify_docTableCoversEverything(t *testing.T) {
	b, err := os.ReadFile("../docs/notifications.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	rows := docRows(t)
	for _, nt := range notificationTypes(t) {
		if !strings.Contains(doc, "\n| `"+nt+"` |") {
			t.Errorf("notification %s: no row in the table of what each carries", nt)
		}
		if nt == string(projections.Live) {
			continue
		}
		if !slices.ContainsFunc(rows, func(r [4]string) bool { return r[1] == nt }) {
			t.Errorf("notification %s: in no case of the script", nt)
		}
	}
	for _, et := range events.Types() {
		if slices.Contains(notTabled, et) {
			continue
		}
		if !slices.ContainsFunc(rows, func(r [4]string) bool { return strings.Contains(r[3], `"event":"`+string(et)+`"`) }) {
			t.Errorf("event %s: causes no row of the script", et)
		}
	}
}
