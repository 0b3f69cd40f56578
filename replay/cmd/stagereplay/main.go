// Command stagereplay answers questions about a stage audit log from the log
// alone: who was on stage at a time or version, the pending requests, a
// readable audit trail, a timeline picture, whether the log is intact and
// every event was legal, receipts of one decision checkable offline, and
// JSON Lines export and import. view serves a local page to explore a
// meeting (timeline, a time slider with the roster and queue, the history
// by user, verify's findings); whatif replays a meeting's recorded commands
// under other settings and compares outcomes.
//
// Run the scripted demo first; it ends by printing the commands that replay
// what it did:
//
//	go run ./replay/cmd/stagereplay demo
//
// A SOURCE is a nats:// URL (a JetStream stream), a data directory of the
// embedded default, or a JSON Lines export file ("-" for standard input).
//
// Exit status: 0 on success (for verify: a clean log); 1 when verify finds
// problems, including a log whose end is gone (truncated) and an empty log
// (it prints "EMPTY: SOURCE holds no events"): nothing verified is not a
// clean log; for receipt verify, a receipt that does not verify; 2 for any
// error (a source that cannot be read, an unknown meeting, a bad flag).
//
// verify prints each cause once, with a line that counts the findings that
// follow from it ("and 81 more findings in meeting webinar-42 that follow
// from it: 81 time; --all lists them"); --all prints them, --json writes
// every finding with the index of its cause.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nats.go"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/productdb/stage/replay"
)

// Exit statuses.
const (
	exitOK       = 0
	exitFindings = 1
	exitError    = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	env := &env{stdout: os.Stdout, stderr: os.Stderr, progress: term.IsTerminal(int(os.Stderr.Fd())), self: selfName()}
	os.Exit(run(ctx, os.Args[1:], env))
}

// env is what a command may touch: its output streams and whether to draw a
// progress bar. Tests give their own.
type env struct {
	stdout, stderr io.Writer
	progress       bool
	self           string // how to invoke this program, for printed commands
	now            func() time.Time
}

// selfName is how the user ran this program: "go run ./replay/cmd/stagereplay"
// when it was built by go run, else its name.
func selfName() string {
	if strings.Contains(os.Args[0], "go-build") {
		return "go run ./replay/cmd/stagereplay"
	}
	return "stagereplay"
}

type cli struct {
	Demo     demoCmd     `cmd:"" help:"Run a scripted webinar on the embedded default and print what happens."`
	Meetings meetingsCmd `cmd:"" help:"List the meetings in a log."`
	Roster   rosterCmd   `cmd:"" help:"Show who is on stage, accepted and requesting, at a version or time."`
	Requests requestsCmd `cmd:"" help:"Show the pending stage requests, oldest first, at a version or time."`
	History  historyCmd  `cmd:"" help:"Print the audit trail of a meeting, or of one user."`
	Timeline timelineCmd `cmd:"" help:"Draw a meeting's stage time, requests and decisions as an SVG picture."`
	Verify   verifyCmd   `cmd:"" help:"Check versions, the hash chain and that every event was legal when it happened."`
	View     viewCmd     `cmd:"" help:"Serve a local web page (127.0.0.1) to explore a meeting: the timeline, a time slider showing the roster and queue, the history by user, verify's findings."`
	WhatIf   whatifCmd   `cmd:"" name:"whatif" help:"Re-decide a meeting's recorded commands under other settings (--set MaxOnStage=4) and compare outcomes per user."`
	Receipt  receiptCmd  `cmd:"" help:"Make a receipt of a user's kick or denial, checkable offline (receipt verify FILE)."`
	Export   exportCmd   `cmd:"" help:"Write a log (or one meeting) as JSON Lines."`
	Import   importCmd   `cmd:"" help:"Append a JSON Lines export to a data directory of the embedded default."`
	Keygen   keygenCmd   `cmd:"" help:"Write a new Ed25519 signing key pair for the engine's signed snapshots and checkpoints."`
	Recover  recoverCmd  `cmd:"" help:"Show what a JetStream log lost against its high-water marks; accept a meeting's loss on the record (--yes); list the records (--list)."`
}

// exit is panicked by kong's exit hook (after --help), to unwind to run.
type exit int

func run(ctx context.Context, args []string, e *env) (code int) {
	if e.now == nil {
		e.now = time.Now
	}
	var c cli
	parser, err := kong.New(&c,
		kong.Name("stagereplay"),
		kong.Description("Replay, inspect and verify a stage audit log. SOURCE is a nats:// URL, a data directory or a JSON Lines file (- for stdin)."),
		kong.Writers(e.stdout, e.stderr),
		kong.Exit(func(c int) { panic(exit(c)) }),
		kong.UsageOnError(),
	)
	if err != nil {
		fmt.Fprintln(e.stderr, "stagereplay:", err)
		return exitError
	}
	defer func() {
		if r := recover(); r != nil {
			x, ok := r.(exit)
			if !ok {
				panic(r)
			}
			code = int(x)
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintln(e.stderr, "stagereplay:", err)
		return exitError
	}
	kctx.BindTo(ctx, (*context.Context)(nil))
	err = kctx.Run(e)
	var f findingsError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &f):
		return exitFindings
	}
	fmt.Fprintln(e.stderr, "stagereplay:", err)
	return exitError
}

// findingsError is returned by verify for a log with findings (already printed).
type findingsError int

func (f findingsError) Error() string { return fmt.Sprintf("%d findings", int(f)) }

// sourceArgs selects and opens a log.
type sourceArgs struct {
	Source        string `arg:"" name:"source" help:"nats:// URL, data directory, or JSON Lines file (- for stdin)."`
	Stream        string `help:"JetStream stream name." default:"STAGE" group:"NATS"`
	SubjectPrefix string `help:"JetStream subject prefix." default:"stage.events" group:"NATS"`
	Creds         string `name:"creds" help:"NATS credentials file." type:"path" group:"NATS"`
	User          string `name:"nats-user" help:"NATS user name." group:"NATS"`
	Password      string `name:"nats-password" help:"NATS password." env:"NATS_PASSWORD" group:"NATS"`
	Token         string `name:"nats-token" help:"NATS token." env:"NATS_TOKEN" group:"NATS"`
	Nkey          string `name:"nkey" help:"NATS NKey seed file." type:"path" group:"NATS"`
	TLSCA         string `name:"tls-ca" help:"CA certificate to verify the NATS server." type:"path" group:"NATS"`
	TLSCert       string `name:"tls-cert" help:"Client certificate for NATS TLS." type:"path" group:"NATS"`
	TLSKey        string `name:"tls-key" help:"Client key for NATS TLS." type:"path" group:"NATS"`
}

func (s *sourceArgs) open(ctx context.Context, e *env) (replay.Source, func(), error) {
	var nopts []nats.Option
	nopts = append(nopts, nats.Name("stagereplay"), nats.Timeout(5*time.Second), nats.MaxReconnects(0))
	if s.Creds != "" {
		nopts = append(nopts, nats.UserCredentials(s.Creds))
	}
	if s.User != "" {
		nopts = append(nopts, nats.UserInfo(s.User, s.Password))
	}
	if s.Token != "" {
		nopts = append(nopts, nats.Token(s.Token))
	}
	if s.Nkey != "" {
		o, err := nats.NkeyOptionFromSeed(s.Nkey)
		if err != nil {
			return nil, nil, fmt.Errorf("--nkey: %w", err)
		}
		nopts = append(nopts, o)
	}
	if s.TLSCA != "" {
		nopts = append(nopts, nats.RootCAs(s.TLSCA))
	}
	if s.TLSCert != "" || s.TLSKey != "" {
		nopts = append(nopts, nats.ClientCert(s.TLSCert, s.TLSKey))
	}
	opts := []replay.OpenOption{replay.WithNATSOptions(nopts...), replay.WithStream(s.Stream), replay.WithSubjectPrefix(s.SubjectPrefix)}
	done := func() {}
	if e.progress {
		var bar *progressbar.ProgressBar
		finished := false
		finish := func() {
			if bar != nil && !finished {
				finished = true
				bar.Finish() // clears the bar (OptionClearOnFinish)
			}
		}
		opts = append(opts, replay.WithProgress(func(n, total int64) {
			if finished {
				return
			}
			if bar == nil {
				bar = progressbar.NewOptions64(max(total, -1),
					progressbar.OptionSetWriter(e.stderr),
					progressbar.OptionSetDescription("reading "+s.Source),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionClearOnFinish(),
					progressbar.OptionShowBytes(total > 0 && !strings.Contains(s.Source, "://")),
					progressbar.OptionSetWidth(30))
			}
			if total > 0 && total != bar.GetMax64() {
				bar.ChangeMax64(total)
			}
			bar.Set64(n)
			if total > 0 && n >= total {
				finish() // before the command prints its answer
			}
		}))
		done = finish
	}
	src, err := replay.Open(ctx, s.Source, opts...)
	if err != nil {
		return nil, nil, err
	}
	return src, func() { done(); src.Close() }, nil
}

// filterArgs choose the meeting and how far to replay it.
type filterArgs struct {
	Meeting string `short:"m" help:"Meeting id (default: the log's only meeting)."`
	Version uint64 `help:"Replay up to this meeting version." xor:"limit"`
	At      string `help:"Replay up to this time: RFC 3339, or HH:MM[:SS] UTC on the meeting's first day." xor:"limit"`
}

// resolve picks the meeting (the only one, when none is given) and turns the
// flags into a replay.Filter.
func (f *filterArgs) resolve(ctx context.Context, src replay.Source) (replay.Filter, error) {
	flt := replay.Filter{MeetingID: f.Meeting, UpToVersion: f.Version}
	var first time.Time
	if f.Meeting == "" {
		ms, err := replay.Meetings(ctx, src)
		if err != nil {
			return flt, err
		}
		switch len(ms) {
		case 0:
			return flt, errors.New("the log holds no events")
		case 1:
			flt.MeetingID, first = ms[0].ID, ms[0].First
		default:
			var ids []string
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			return flt, fmt.Errorf("the log holds %d meetings; choose one with -m: %s", len(ms), strings.Join(ids, ", "))
		}
	}
	if f.At == "" {
		return flt, nil
	}
	at, err := parseAt(f.At, first)
	if errors.Is(err, errNoDay) {
		for e, err := range src.Events(ctx, flt.MeetingID) {
			if err != nil {
				return flt, err
			}
			first = e.Time
			break
		}
		if first.IsZero() {
			return flt, fmt.Errorf("%w: %q", replay.ErrUnknownMeeting, flt.MeetingID)
		}
		at, err = parseAt(f.At, first)
	}
	if err != nil {
		return flt, err
	}
	flt.UpTo = at
	return flt, nil
}

// errNoDay is returned by parseAt for a clock time when the meeting's first
// day is not known yet (first is zero): look it up and call again.
var errNoDay = errors.New("--at: a clock time needs the meeting's first day")

// parseAt parses the value of --at: an RFC 3339 time, or HH:MM[:SS], a UTC
// clock time on the UTC day of first (the meeting's first event), up to the
// end of the second named (the whole second is included). A clock time with
// a zero first returns errNoDay. It is pure: no clock, no I/O.
func parseAt(s string, first time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	var clock time.Time
	var err error
	for _, layout := range []string{"15:04:05", "15:04"} {
		if clock, err = time.Parse(layout, s); err == nil {
			break
		}
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("--at %q: want RFC 3339 (2026-11-29T14:03:07Z) or HH:MM[:SS]", s)
	}
	if first.IsZero() {
		return time.Time{}, errNoDay
	}
	y, m, d := first.UTC().Date()
	return time.Date(y, m, d, clock.Hour(), clock.Minute(), clock.Second(), int(time.Second-1), time.UTC), nil
}
