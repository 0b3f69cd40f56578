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
	close    func() error
}

func newJSSource(ctx context.Context, nc *nats.Conn, c openConfig) (*jsSource, error) {
	s := &jsSource{stream: c.stream, prefix: c.subjectPrefix, progress: c.progress}
	if s.stream == "" {
		s.stream = "STAGE"
	}
	if s.prefix == "" {
		s.prefix = "stage.events"
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	s.js = js
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := js.Stream(ictx, s.stream); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("%w: no stream %q", ErrSource, s.stream)
		}
		return nil, fmt.Errorf("%w: stream %q: %v", ErrSource, s.stream, err)
	}
	return s, nil
}

func (s *jsSource) Events(ctx context.Context, meetingID string) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		fail := func(err error) { yield(events.Envelope{}, fmt.Errorf("replay: stream %s: %w", s.stream, err)) }
		filter := s.prefix + ".>"
		if meetingID != "" {
			if err := events.ValidateID(meetingID); err != nil {
				fail(err)
				return
			}
			filter = s.prefix + "." + meetingID
		}
		// Read up to the last message stored when the read begins.
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := s.js.Stream(ictx, s.stream)
		var last uint64
		if err == nil {
			if meetingID == "" {
				if st.CachedInfo().State.Msgs > 0 {
					last = st.CachedInfo().State.LastSeq
				}
			} else {
				var m *jetstream.RawStreamMsg
				m, err = st.GetLastMsgForSubject(ictx, filter)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					err = nil
				} else if err == nil {
					last = m.Sequence
				}
			}
		}
		cancel()
		if err != nil {
			fail(err)
			return
		}
		if last == 0 {
			return
		}
		cons, err := s.js.OrderedConsumer(ctx, s.stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
		if err != nil {
			fail(err)
			return
		}
		msgs, err := cons.Messages()
		if err != nil {
			fail(err)
			return
		}
		defer msgs.Stop()
		for n := 0; ; n++ {
			msg, err := msgs.Next(jetstream.NextContext(ctx))
			if cerr := ctx.Err(); cerr != nil {
				yield(events.Envelope{}, cerr)
				return
			}
			if err != nil {
				fail(err)
				return
			}
			md, err := msg.Metadata()
			if err != nil {
				fail(err)
				return
			}
			seq := md.Sequence.Stream
			e, err := events.Unmarshal(msg.Data())
			if err == nil && s.prefix+"."+e.MeetingID != msg.Subject() {
				err = fmt.Errorf("%w: event of meeting %q stored on subject %s", events.ErrMalformed, e.MeetingID, msg.Subject())
			}
			if err != nil {
				if !yield(events.Envelope{}, &DecodeError{Name: "stream " + s.stream, Seq: seq, Err: err}) {
					return
				}
			} else {
				e.Seq = seq
				if !yield(e, nil) {
					return
				}
			}
			if s.progress != nil && (n%1024 == 0 || seq >= last) {
				s.progress(int64(seq), int64(last))
			}
			if seq >= last {
				return
			}
		}
	}
}

func (s *jsSource) Close() error {
	if s.close != nil {
		return s.close()
	}
	return nil
}
