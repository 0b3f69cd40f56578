package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/projections"
	"github.com/productdb/stage/replay"
)

// viewAssets are the page's files: no CDN, nothing fetched at run time.
//
//go:embed viewassets
var viewAssets embed.FS

type viewCmd struct {
	sourceArgs
	Meeting      string        `short:"m" help:"Meeting id (default: the log's only meeting)."`
	Port         int           `default:"8417" help:"Port to listen on, on 127.0.0.1 only (0: any free port)."`
	KeyRetention time.Duration `name:"key-retention" default:"24h" help:"As for verify: the store's idempotency key retention."`
}

// Run serves the page until the context ends (Ctrl-C).
func (c *viewCmd) Run(ctx context.Context, e *env) error {
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("--port %d: want 0-65535", c.Port)
	}
	if c.KeyRetention <= 0 {
		return fmt.Errorf("--key-retention %v: want a positive duration", c.KeyRetention)
	}
	v, err := c.load(ctx, e)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: v.handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(e.stdout, "viewing meeting %s (%s) at http://%s/ (Ctrl-C to stop)\n", v.meeting, plural(len(v.events), "event"), ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// view is one meeting's log in memory, and verify's findings on it.
type view struct {
	meeting  string
	events   []events.Envelope
	history  *projections.History
	findings []viewFinding
}

// viewFinding is one of verify's findings, placed in time when its version is known.
type viewFinding struct {
	Kind    replay.FindingKind `json:"kind"`
	Seq     uint64             `json:"seq,omitempty"`
	Version uint64             `json:"version,omitempty"`
	Time    time.Time          `json:"time,omitzero"`
	Reason  string             `json:"reason"`
	Cause   bool               `json:"cause"`
}

func (c *viewCmd) load(ctx context.Context, e *env) (*view, error) {
	src, done, err := c.open(ctx, e)
	if err != nil {
		return nil, err
	}
	defer done()
	fa := filterArgs{Meeting: c.Meeting}
	f, err := fa.resolve(ctx, src)
	if err != nil {
		return nil, err
	}
	v := &view{meeting: f.MeetingID, history: projections.NewHistory(f.MeetingID)}
	for ev, err := range src.Events(ctx, f.MeetingID) {
		var de *replay.DecodeError
		if errors.As(err, &de) {
			continue // verify reports it
		}
		if err != nil {
			return nil, err
		}
		v.events = append(v.events, ev)
		v.history.Apply(&ev)
	}
	if len(v.events) == 0 {
		return nil, fmt.Errorf("%w: %q", replay.ErrUnknownMeeting, f.MeetingID)
	}
	opts := []replay.VerifyOption{replay.WithKeyRetention(c.KeyRetention)}
	if hs, ok := src.(replay.HistorySource); ok {
		h, recs, err := hs.History(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, replay.WithHistory(h, recs, f.MeetingID))
	}
	rep, err := replay.Verify(ctx, src.Events(ctx, f.MeetingID), opts...)
	if err != nil {
		return nil, err
	}
	at := map[uint64]time.Time{}
	for _, ev := range v.events {
		at[ev.Version] = ev.Time
	}
	v.findings = []viewFinding{}
	for _, fd := range rep.Findings {
		v.findings = append(v.findings, viewFinding{Kind: fd.Kind, Seq: fd.Seq, Version: fd.Version, Time: at[fd.Version], Reason: fd.Reason, Cause: fd.Cause == nil})
	}
	return v, nil
}

// Events implements replay.Source over the loaded events, so that the
// roster at a time is computed by replay.State, as roster --at computes it.
func (v *view) Events(ctx context.Context, meetingID string) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		for _, e := range v.events {
			if err := ctx.Err(); err != nil {
				yield(events.Envelope{}, err)
				return
			}
			if (meetingID == "" || e.MeetingID == meetingID) && !yield(e, nil) {
				return
			}
		}
	}
}

// Close implements replay.Source.
func (v *view) Close() error { return nil }

func (v *view) handler() http.Handler {
	mux := http.NewServeMux()
	assets, _ := fs.Sub(viewAssets, "viewassets")
	mux.Handle("GET /", http.FileServerFS(assets))
	mux.HandleFunc("GET /timeline.svg", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		if err := replay.WriteTimeline(&b, v.history, replay.TimelineOptions{}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Write(b.Bytes())
	})
	mux.HandleFunc("GET /api/meeting", func(w http.ResponseWriter, r *http.Request) {
		hosts := []string{}
		for _, en := range v.history.Entries {
			if en.Role == "host" && !slices.Contains(hosts, en.Actor) {
				hosts = append(hosts, en.Actor)
			}
		}
		last := v.events[len(v.events)-1]
		serveJSON(w, map[string]any{"meeting": v.meeting, "start": v.history.Start, "end": v.history.End,
			"events": len(v.events), "version": last.Version, "users": v.history.Users(), "hosts": hosts})
	})
	mux.HandleFunc("GET /api/roster", func(w http.ResponseWriter, r *http.Request) {
		f := replay.Filter{MeetingID: v.meeting}
		if s := r.URL.Query().Get("at"); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				http.Error(w, "at: want an RFC 3339 time: "+err.Error(), http.StatusBadRequest)
				return
			}
			f.UpTo = t
		}
		s, err := replay.State(r.Context(), v, f)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		serveJSON(w, projections.RosterOf(s))
	})
	mux.HandleFunc("GET /api/history", func(w http.ResponseWriter, r *http.Request) {
		h := v.history
		if u := r.URL.Query().Get("user"); u != "" {
			if !slices.Contains(h.Users(), u) {
				http.Error(w, fmt.Sprintf("user %q does not appear in meeting %s", u, v.meeting), http.StatusNotFound)
				return
			}
			h = h.ForUser(u)
		}
		serveJSON(w, h.Entries)
	})
	mux.HandleFunc("GET /api/findings", func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, v.findings)
	})
	return mux
}

func serveJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := writeJSON(w, v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
