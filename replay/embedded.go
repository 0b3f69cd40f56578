package replay

// This file holds everything that depends on where the embedded default and
// JetStream keep the log: the JetStream source (by URL, or on the embedded
// server of a data directory) and the embedded default itself.

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
)

// DataDir is the embedded default's store, kept in a data directory.
type DataDir struct {
	// Store is the store to give an Engine.
	Store eventstore.Store
	// Dir is the data directory.
	Dir   string
	close func() error
	once  sync.Once
}

// Close closes the store and shuts the embedded server down. Later calls
// do nothing and return nil.
func (d *DataDir) Close() error {
	var err error
	d.once.Do(func() { err = d.close() })
	return err
}

// OpenDataDir opens (creating if needed) the embedded default in dir: an
// in-process nats-server with JetStream file storage in dir, and the
// JetStream store on it (natsstore.OpenEmbedded). Close shuts both down.
// While another embedded server holds dir (a running backend, in this
// process or another), the error wraps natsstore.ErrDirLocked and names
// the holder: reach that store through its server's nats:// URL instead.
func OpenDataDir(ctx context.Context, dir string) (*DataDir, error) {
	emb, err := natsstore.OpenEmbedded(ctx, dir)
	if errors.Is(err, natsstore.ErrDirLocked) {
		return nil, fmt.Errorf("%w: %w", ErrSource, err) // it names dir
	}
	if err != nil {
		return nil, fmt.Errorf("%w: data directory %s: %w", ErrSource, dir, err)
	}
	return &DataDir{Store: emb.Store, Dir: dir, close: emb.Close}, nil
}

// openDataDir starts the embedded server on dir and reads its stream raw.
func openDataDir(ctx context.Context, dir string, c openConfig) (Source, error) {
	if fi, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a data directory of the embedded default (no jetstream/ in it)", ErrSource, dir)
	}
	srv, err := natsstore.StartServer(dir)
	if err != nil {
		// A held directory: natsstore.DirLockedError names the holder and
		// says to use its server's URL.
		return nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	src, err := newJSSource(ctx, nc, c)
	if err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, fmt.Errorf("%w (in %s)", err, dir)
	}
	src.close = func() error { nc.Close(); srv.Shutdown(); return nil }
	return src, nil
}

// openNATS connects to a server by URL and reads a stream's messages raw.
func openNATS(ctx context.Context, location string, c openConfig) (Source, error) {
	u, err := url.Parse(location)
	if err != nil {
		return nil, fmt.Errorf("%w: bad URL %q: %v", ErrSource, location, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: bad URL %q: no host", ErrSource, location)
	}
	nc, err := nats.Connect(location, c.natsOpts...)
	if err != nil {
		return nil, fmt.Errorf("%w: connect to %s: %v", ErrSource, redact(u), err)
	}
	src, err := newJSSource(ctx, nc, c)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w (on %s)", err, redact(u))
	}
	src.close = func() error { nc.Close(); return nil }
	return src, nil
}

// redact drops a password from a URL before it is printed.
func redact(u *url.URL) string { return u.Redacted() }

// jsSource reads a JetStream stream's messages as they are stored, with an
// ordered consumer, and decodes them itself: Verify must see a tampered
// message, not a store's refusal to serve it.
type jsSource struct {
	js       jetstream.JetStream
	stream   string
	prefix   string
	progress Progress
	idle     time.Duration
	close    func() error
}

// apiTimeout bounds each request to the JetStream API (stream info, a
// message, creating the consumer).
const apiTimeout = 10 * time.Second

func newJSSource(ctx context.Context, nc *nats.Conn, c openConfig) (*jsSource, error) {
	s := &jsSource{stream: c.stream, prefix: c.subjectPrefix, progress: c.progress, idle: c.idle}
	if s.stream == "" {
		s.stream = "STAGE"
	}
	if s.prefix == "" {
		s.prefix = "stage.events"
	}
	if s.idle <= 0 {
		s.idle = DefaultIdleTimeout
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	s.js = js
	ictx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	if _, err := js.Stream(ictx, s.stream); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("%w: no stream %q", ErrSource, s.stream)
		}
		return nil, fmt.Errorf("%w: stream %q: %v", ErrSource, s.stream, err)
	}
	return s, nil
}

// Events reads the stream as it is when the read begins, and never waits
// without a bound: it stops at the stream's last sequence or when the
// consumer has nothing more pending, and gives up on a message that does
// not come within the idle timeout. A stream that keeps no message it
// should (one with no limits: no MaxAge, MaxMsgs, MaxBytes or
// MaxMsgsPerSubject) is reported with a [*LostError]: sequences skipped
// (the sequence goes on), or an end the stream reports but no longer holds
// (the sequence ends).
func (s *jsSource) Events(ctx context.Context, meetingID string) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		fail := func(err error) { yield(events.Envelope{}, fmt.Errorf("replay: stream %s: %w", s.stream, err)) }
		filter := s.prefix + ".>"
		if meetingID != "" {
			if err := events.ValidateID(meetingID); err != nil {
				fail(err)
				return
			}
			filter = s.prefix + "." + natsstore.SubjectToken(meetingID)
		}
		// Read up to the last message stored when the read begins.
		api := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, apiTimeout) }
		ictx, cancel := api()
		st, err := s.js.Stream(ictx, s.stream)
		cancel()
		if err != nil {
			fail(err)
			return
		}
		info := st.CachedInfo()
		state, cfg := info.State, info.Config
		// Limits drop messages by design; without them every message
		// the stream ever stored must still be there.
		complete := cfg.MaxAge == 0 && cfg.MaxMsgs <= 0 && cfg.MaxBytes <= 0 && cfg.MaxMsgsPerSubject <= 0
		lost := func(from, to uint64, end bool) *LostError {
			return &LostError{Stream: s.stream, MeetingID: meetingID, From: from, To: to, End: end,
				DeniesDeletes: cfg.DenyDelete && cfg.DenyPurge}
		}
		if complete && state.LastSeq > 0 && state.Msgs == 0 {
			// It reports messages stored and holds none.
			yield(events.Envelope{}, lost(1, state.LastSeq, true))
			return
		}
		last := state.LastSeq
		if meetingID != "" {
			last = 0
			ictx, cancel := api()
			m, err := st.GetLastMsgForSubject(ictx, filter)
			cancel()
			switch {
			case err == nil:
				last = m.Sequence
			case !errors.Is(err, jetstream.ErrMsgNotFound):
				fail(err)
				return
			}
		}
		var read uint64 // the last sequence read
		if last > 0 {
			var ok bool
			read, ok = s.read(ctx, filter, last, complete && meetingID == "", lost, yield)
			if !ok {
				return
			}
		}
		if !complete || state.LastSeq == 0 {
			return
		}
		if meetingID == "" {
			if read < last {
				yield(events.Envelope{}, lost(read+1, last, true))
			}
			return
		}
		// One meeting's read cannot see what the stream lost around it;
		// ask the stream whether its last message and every one before
		// it are still there.
		ictx, cancel = api()
		_, err = st.GetMsg(ictx, state.LastSeq)
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			yield(events.Envelope{}, lost(state.LastSeq, state.LastSeq, true))
		} else if err != nil {
			fail(err)
		} else if state.NumDeleted > 0 {
			e := lost(0, 0, false)
			e.Count = uint64(state.NumDeleted)
			yield(events.Envelope{}, e)
		}
	}
}

// read yields the messages on filter up to sequence last, and returns the
// last sequence it read, and false when the caller must stop (yield said
// so, or the read failed, was canceled or timed out: already yielded).
// With holes, a skipped sequence is yielded as a [*LostError]. It reads
// with natsstore.ReadOrdered: one ordered consumer, the decoding spread
// over the cores, the events in stream order.
func (s *jsSource) read(ctx context.Context, filter string, last uint64, holes bool,
	lost func(from, to uint64, end bool) *LostError, yield func(events.Envelope, error) bool) (uint64, bool) {
	fail := func(err error) { yield(events.Envelope{}, fmt.Errorf("replay: stream %s: %w", s.stream, err)) }
	prefix := s.prefix + "."
	decode := func(seq uint64, subject string, data []byte) (events.Envelope, error) {
		e, err := events.Unmarshal(data)
		if err == nil && (!strings.HasPrefix(subject, prefix) || subject[len(prefix):] != natsstore.SubjectToken(e.MeetingID)) {
			err = fmt.Errorf("%w: event of meeting %q stored on subject %s", events.ErrMalformed, e.MeetingID, subject)
		}
		e.Seq = seq
		return e, err
	}
	var read uint64
	next := uint64(1)
	n := 0
	for m, err := range natsstore.ReadOrdered(ctx, s.js, natsstore.OrderedRead{Stream: s.stream, Filter: filter, To: last, Idle: s.idle, Decode: decode}) {
		if err != nil {
			switch {
			case ctx.Err() != nil:
				yield(events.Envelope{}, ctx.Err())
			case errors.Is(err, natsstore.ErrReadIdle):
				e := lost(read+1, last, true)
				e.Idle = s.idle
				yield(events.Envelope{}, e)
			default:
				fail(err)
			}
			return read, false
		}
		seq := m.Seq
		if holes && seq > next {
			if !yield(events.Envelope{}, lost(next, seq-1, false)) {
				return read, false
			}
		}
		next, read = seq+1, seq
		if m.Err != nil {
			// The subject names the meeting the message was stored for.
			meeting, ok := natsstore.MeetingOfSubject(s.prefix, m.Subject)
			if !ok {
				meeting, _ = strings.CutPrefix(m.Subject, prefix)
			}
			if !yield(events.Envelope{}, &DecodeError{Name: "stream " + s.stream, Seq: seq, MeetingID: meeting, Err: m.Err}) {
				return read, false
			}
		} else if !yield(m.Event, nil) {
			return read, false
		}
		if s.progress != nil && (n%1024 == 0 || seq >= last || m.Pending == 0) {
			s.progress(int64(seq), int64(last))
		}
		n++
	}
	return read, true
}

func (s *jsSource) Close() error {
	if s.close != nil {
		return s.close()
	}
	return nil
}
