package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/replay"
)

// receiptCmd makes a receipt (the default) or checks one.
type receiptCmd struct {
	Make   receiptMakeCmd   `cmd:"" default:"withargs" help:"Make a receipt: a user's kick or denial and the hash chain from it to a later head (the default subcommand)."`
	Verify receiptVerifyCmd `cmd:"" help:"Check a receipt offline, without the log."`
}

type receiptMakeCmd struct {
	sourceArgs
	Meeting string `short:"m" help:"Meeting id (default: the log's only meeting)."`
	User    string `short:"u" help:"The user the receipt is for: their latest kick or denial, or the stage's end or requests' closing that moved them (or the event at --version)."`
	Version uint64 `help:"The version of the event the receipt is for (any event; with --user, one about that user)."`
	Head    uint64 `help:"End the chain at this version (default: the latest checkpoint that matches the log, else the meeting's last event)."`
	Output  string `short:"o" help:"Write the receipt to this file (default: standard output)." type:"path"`
	proofArgs
}

func (c *receiptMakeCmd) Run(ctx context.Context, e *env) error {
	if c.User == "" && c.Version == 0 {
		return errors.New("say which event: --user (their latest kick or denial, a stage end or requests' closing among them) or --version")
	}
	src, done, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	meeting := c.Meeting
	if meeting == "" {
		fa := filterArgs{}
		flt, err := fa.resolve(ctx, src)
		if err != nil {
			return err
		}
		meeting = flt.MeetingID
	}
	version := c.Version
	if c.User != "" {
		evs, err := replay.KicksAndDenials(src.Events(ctx, meeting), c.User)
		if err != nil {
			return err
		}
		if c.Version != 0 {
			evs = slices.DeleteFunc(evs, func(ev events.Envelope) bool { return ev.Version != c.Version })
		}
		if len(evs) == 0 {
			if c.Version != 0 {
				return fmt.Errorf("version %d of meeting %s did not kick or deny %s", c.Version, meeting, c.User)
			}
			return fmt.Errorf("%s was never kicked or denied in meeting %s", c.User, meeting)
		}
		version = evs[len(evs)-1].Version
	}
	var opts []replay.ReceiptOption
	if c.Head != 0 {
		opts = append(opts, replay.ReceiptHeadAt(c.Head))
	}
	pub, cps, err := c.load(ctx, e, src, meeting)
	if err != nil {
		return err
	}
	if pub != nil {
		opts = append(opts, replay.ReceiptCheckpoints(pub, cps))
	}
	r, err := replay.MakeReceipt(ctx, src.Events(ctx, meeting), meeting, version, opts...)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := writeTo(c.Output, e.stdout, func(w io.Writer) error {
		_, err := w.Write(append(data, '\n'))
		return err
	}); err != nil {
		return err
	}
	anchor := "no signed checkpoint: the head is anchored by nothing (give --public-key, and --checkpoints for a checkpoint file)"
	if r.Checkpoint != nil {
		anchor = fmt.Sprintf("anchored by the checkpoint of version %d signed by key %s at %s", r.Checkpoint.Version, r.Checkpoint.Key, r.Checkpoint.Time.UTC().Format("2006-01-02 15:04:05"))
	} else if pub != nil {
		anchor = fmt.Sprintf("no checkpoint of meeting %s at or after version %d matches the log: the head is anchored by nothing", meeting, version)
	}
	fmt.Fprintf(e.stderr, "receipt for %s (meeting %s version %d), chained through %s to head version %d; %s\n",
		describe(r), meeting, version, plural(len(r.Links), "later event"), r.Head.Version, anchor)
	return nil
}

// describe says what a receipt's event is: its time, type, actor and
// the users it is about.
func describe(r *replay.Receipt) string {
	ev := &r.Event
	actor := ev.Actor
	if actor == "" {
		actor = "the backend"
	}
	return fmt.Sprintf("%s %s by %s, about %s", ev.Time.UTC().Format("2006-01-02 15:04:05"), ev.Type, actor, strings.Join(ev.Users(), ", "))
}

type receiptVerifyCmd struct {
	File      string `arg:"" name:"file" help:"The receipt file (- for standard input)."`
	PublicKey string `name:"public-key" help:"The deployment's Ed25519 public key (PEM): the receipt's checkpoint must be signed by it." type:"path"`
	JSON      bool   `help:"Write the verdict as JSON."`
}

func (c *receiptVerifyCmd) Run(ctx context.Context, e *env) error {
	var data []byte
	var err error
	if c.File == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<30))
	} else {
		data, err = os.ReadFile(c.File)
	}
	if err != nil {
		return err
	}
	var pub ed25519.PublicKey
	if c.PublicKey != "" {
		if pub, err = checkpoint.LoadPublicKey(c.PublicKey); err != nil {
			return fmt.Errorf("--public-key: %w", err)
		}
	}
	r, err := replay.ParseReceipt(data)
	var v *replay.ReceiptVerdict
	if err == nil {
		v, err = replay.VerifyReceipt(r, pub)
	}
	if c.JSON {
		out := struct {
			OK    bool   `json:"ok"`
			Error string `json:"error,omitempty"`
			*replay.ReceiptVerdict
		}{OK: err == nil, ReceiptVerdict: v}
		if err != nil {
			out.Error = err.Error()
		}
		if werr := writeJSON(e.stdout, out); werr != nil {
			return werr
		}
	} else if err != nil {
		fmt.Fprintf(e.stdout, "INVALID: %v\n", err)
	} else {
		fmt.Fprintf(e.stdout, "VALID: %s\n", describe(r))
		fmt.Fprintf(e.stdout, "  meeting %s version %d, linked by the hash chain through %s to version %d (hash %s)\n",
			v.MeetingID, v.Version, plural(len(r.Links), "later event"), v.Head.Version, v.Head.Hash)
		switch {
		case v.Anchored:
			fmt.Fprintf(e.stdout, "  anchored: the head is the one key %s signed at %s\n", v.Key, v.CheckpointTime.UTC().Format("2006-01-02 15:04:05"))
		case r.Checkpoint != nil:
			fmt.Fprintf(e.stdout, "  not anchored: the receipt carries a checkpoint of key %s, unchecked without --public-key\n", r.Checkpoint.Key)
		default:
			fmt.Fprintln(e.stdout, "  not anchored: no signed checkpoint; the head proves something only to whoever knows it is the meeting's")
		}
	}
	if err != nil {
		if errors.Is(err, replay.ErrMalformedReceipt) || errors.Is(err, replay.ErrReceiptInvalid) {
			return findingsError(1)
		}
		return err
	}
	return nil
}

// load loads the public key and the checkpoints (those the source keeps
// and those of the --checkpoints files, of meeting if it is not empty);
// nil without --public-key.
func (c *proofArgs) load(ctx context.Context, e *env, src replay.Source, meeting string) (ed25519.PublicKey, []checkpoint.Signed, error) {
	if c.PublicKey == "" {
		if len(c.Checkpoints) > 0 {
			return nil, nil, errors.New("--checkpoints needs --public-key: a checkpoint proves nothing without the key that signed it")
		}
		return nil, nil, nil
	}
	pub, err := checkpoint.LoadPublicKey(c.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("--public-key: %w", err)
	}
	cps, err := replay.ReadCheckpoints(ctx, src)
	if err != nil && !errors.Is(err, checkpoint.ErrMalformed) {
		return nil, nil, err
	}
	if err != nil {
		// Damaged checkpoint messages prove nothing; the others still do.
		fmt.Fprintf(e.stderr, "stagereplay: warning: %v\n", err)
	}
	for _, path := range c.Checkpoints {
		more, err := checkpoint.ReadFile(path)
		if err != nil && !errors.Is(err, checkpoint.ErrMalformed) {
			return nil, nil, fmt.Errorf("--checkpoints: %w", err)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "stagereplay: warning: %v\n", err)
		}
		cps = append(cps, more...)
	}
	if meeting != "" {
		cps = slices.DeleteFunc(cps, func(s checkpoint.Signed) bool { return s.MeetingID != meeting })
	}
	return pub, cps, nil
}
