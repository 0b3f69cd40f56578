package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
)

// recoverCmd is the operator's way out of lost history: it shows what a
// JetStream log lost against its high-water marks, accepts a meeting's
// loss on the record (--yes), and lists the records (--list).
type recoverCmd struct {
	sourceArgs
	Meeting  string `short:"m" help:"The meeting whose lost history to show or accept (none: the whole stream; with --yes, a loss of the stream that names no meeting)."`
	Operator string `help:"Who accepts the loss (recorded; required with --yes)."`
	Reason   string `help:"Why the loss is accepted (recorded; required with --yes)."`
	Yes      bool   `help:"Accept the loss on the record: write a recovery record and lower the meeting's high-water mark so that appends resume. Without it, a dry run."`
	List     bool   `help:"List the recovery records instead."`
}

func (c *recoverCmd) Run(ctx context.Context, e *env) error {
	if c.List && (c.Yes || c.Meeting != "") {
		return errors.New("--list takes no --meeting and no --yes")
	}
	if c.Yes && (strings.TrimSpace(c.Operator) == "" || strings.TrimSpace(c.Reason) == "") {
		return errors.New("--yes needs --operator and --reason: the recovery record names who accepted the loss and why")
	}
	nc, done, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	switch {
	case c.List:
		recs, err := natsstore.ReadRecoveries(ctx, js, c.Stream)
		if err != nil {
			return err
		}
		writeRecoveries(e.stdout, c.Stream, recs)
		return nil
	case c.Yes:
		return c.accept(ctx, e, nc)
	}
	return c.dryRun(ctx, e, js)
}

// connect reaches the log: a nats:// URL, or the embedded server of a
// data directory (started here, shut down by the returned func).
func (c *recoverCmd) connect(ctx context.Context) (*nats.Conn, func(), error) {
	if strings.Contains(c.Source, "://") {
		opts, err := c.natsOptions()
		if err != nil {
			return nil, nil, err
		}
		nc, err := nats.Connect(c.Source, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("connect to %s: %w", c.Source, err)
		}
		return nc, nc.Close, nil
	}
	if fi, err := os.Stat(filepath.Join(c.Source, "jetstream")); err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("%s is not a data directory of the embedded default (no jetstream/ in it); recover works on a data directory or a nats:// URL", c.Source)
	}
	srv, err := natsstore.StartServer(c.Source)
	if err != nil {
		return nil, nil, err
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		return nil, nil, err
	}
	return nc, func() { nc.Close(); srv.Shutdown() }, nil
}

// natsOptions are the connection options of the NATS flags.
func (c *recoverCmd) natsOptions() ([]nats.Option, error) {
	opts := []nats.Option{nats.Name("stagereplay recover"), nats.Timeout(5 * time.Second), nats.MaxReconnects(0)}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.Nkey != "" {
		o, err := nats.NkeyOptionFromSeed(c.Nkey)
		if err != nil {
			return nil, fmt.Errorf("--nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts, nil
}

// dryRun prints what the log lost, and records nothing.
func (c *recoverCmd) dryRun(ctx context.Context, e *env, js jetstream.JetStream) error {
	r, err := natsstore.CheckHistory(ctx, js, c.Stream, c.SubjectPrefix)
	if err != nil {
		return err
	}
	w := e.stdout
	fmt.Fprintf(w, "stream %s: sequences %d to %d, %d messages, %d missing inside\n", r.Stream, r.FirstSeq, r.LastSeq, r.Msgs, r.NumDeleted)
	if r.Marked {
		fmt.Fprintf(w, "high-water mark: sequence %d seen stored (baseline: first %d, %d missing)\n", r.MarkLast, r.MarkFirst, r.MarkDeleted)
	} else {
		fmt.Fprintln(w, "high-water mark: none (no store with marks wrote to this stream): a lost tail cannot be seen")
	}
	if r.StreamLoss != nil {
		fmt.Fprintf(w, "stream: LOST: %s\n", r.StreamLoss.Reason)
	}
	var losses []*eventstore.HistoryLostError
	if c.Meeting != "" {
		l := r.Meeting(c.Meeting)
		if l == nil {
			if l, err = natsstore.CheckMeeting(ctx, js, c.Stream, c.SubjectPrefix, c.Meeting); err != nil {
				return err
			}
		}
		if l == nil {
			fmt.Fprintf(w, "meeting %s: nothing lost\n", c.Meeting)
			return nil
		}
		losses = append(losses, l)
	} else {
		losses = r.Meetings
	}
	for _, l := range losses {
		fmt.Fprintf(w, "meeting %s: LOST: had version %d (sequence %d, hash %s), holds version %d (sequence %d): %s\n",
			l.MeetingID, l.SeenVersion, l.SeenSeq, l.SeenHash, l.HaveVersion, l.HaveSeq, l.Reason)
	}
	if len(losses) == 0 && r.StreamLoss == nil {
		fmt.Fprintln(w, "nothing lost")
		return nil
	}
	fmt.Fprintf(w, "dry run: nothing recorded. To accept a meeting's loss on the record, run: %s recover %s --meeting M --operator NAME --reason TEXT --yes\n", e.self, c.Source)
	return nil
}

// accept records the loss and lowers the mark, through a Store.
func (c *recoverCmd) accept(ctx context.Context, e *env, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := js.Stream(ctx, c.Stream); err != nil {
		return fmt.Errorf("stream %s: %w", c.Stream, err)
	}
	st, err := natsstore.New(ctx, nc, natsstore.WithStream(c.Stream), natsstore.WithSubjectPrefix(c.SubjectPrefix))
	if err != nil {
		return err
	}
	rec, err := st.AcceptLoss(ctx, c.Meeting, c.Operator, c.Reason)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	what := "meeting " + rec.MeetingID
	if rec.MeetingID == "" {
		what = "stream " + rec.Stream
	}
	fmt.Fprintf(e.stdout, "recorded %s: %s accepted the loss of %s (%s): %s\n", rec.Key, rec.Operator, what, rec.Reason, rec.Lost)
	if rec.MeetingID != "" {
		fmt.Fprintf(e.stdout, "meeting %s resumes at version %d (sequence %d)\n", rec.MeetingID, rec.HaveVersion, rec.HaveSeq)
	}
	if rec.StreamRebased {
		fmt.Fprintf(e.stdout, "stream %s: its mark is now sequences %d to %d, %d missing inside\n", rec.Stream, rec.StreamFirst, rec.StreamLast, rec.StreamDeleted)
	}
	return nil
}

func writeRecoveries(w io.Writer, stream string, recs []natsstore.Recovery) {
	if len(recs) == 0 {
		fmt.Fprintf(w, "stream %s: no recovery records\n", stream)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORD\tTIME\tMEETING\tOPERATOR\tSEEN\tREMAINS\tREASON\tLOST")
	for _, r := range recs {
		m := r.MeetingID
		if m == "" {
			m = "(stream)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\tv%d@%d\tv%d@%d\t%s\t%s\n", r.Key, r.Time.UTC().Format(time.RFC3339), m, r.Operator,
			r.SeenVersion, r.SeenSeq, r.HaveVersion, r.HaveSeq, r.Reason, r.Lost)
	}
	tw.Flush()
}
