package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// ErrUnknownMeeting is returned (wrapped) when a source holds no event of the
// meeting asked for.
var ErrUnknownMeeting = errors.New("replay: unknown meeting")

// ErrSource is wrapped by the errors of [Open] for a location that cannot be
// read: a malformed URL, a server that cannot be reached, a missing stream,
// a file or directory that does not exist or cannot be read.
var ErrSource = errors.New("replay: cannot open source")

// Source is an event log to replay: a JetStream stream, the embedded
// default's data directory, a JSON Lines export, or any eventstore.Store.
type Source interface {
	// Events yields the log's events in stream order: all of them, or only
	// meetingID's when it is not empty. A malformed event is yielded as an
	// error wrapping events.ErrMalformed (a [*DecodeError]), and messages a
	// stream lost in its middle as a [*LostError] wrapping [ErrMissing]; the
	// sequence goes on after either if the caller keeps ranging. A lost end
	// (an error wrapping [ErrTruncated]: a stream's last messages gone, a
	// file that stops in the middle of an event) and any other error end
	// it. No read waits without a bound (see [WithIdleTimeout]).
	Events(ctx context.Context, meetingID string) iter.Seq2[events.Envelope, error]
	// Close releases the source (connections, files, an embedded server).
	Close() error
}

// Progress is told how far a read has come: done out of total units
// (bytes of a file, or stream positions); total is 0 when unknown.
type Progress func(done, total int64)

// OpenOption configures [Open].
type OpenOption func(*openConfig)

type openConfig struct {
	natsOpts      []nats.Option
	stream        string
	subjectPrefix string
	progress      Progress
	idle          time.Duration
}

// WithNATSOptions passes options to nats.Connect for a JetStream URL:
// credentials (nats.UserCredentials, nats.UserInfo, nats.Token, nats.Nkey),
// TLS (nats.RootCAs, nats.ClientCert), timeouts, a name.
func WithNATSOptions(opts ...nats.Option) OpenOption {
	return func(c *openConfig) { c.natsOpts = append(c.natsOpts, opts...) }
}

// WithStream sets the JetStream stream to read (default "STAGE").
func WithStream(name string) OpenOption { return func(c *openConfig) { c.stream = name } }

// WithSubjectPrefix sets the stream's subject prefix (default "stage.events").
func WithSubjectPrefix(p string) OpenOption { return func(c *openConfig) { c.subjectPrefix = p } }

// WithProgress reports reading progress to p (for a progress bar).
func WithProgress(p Progress) OpenOption { return func(c *openConfig) { c.progress = p } }

// WithIdleTimeout sets how long a JetStream source (a URL or a data
// directory) waits for the next message of a read before it gives up and
// reports the rest of the stream as gone: an error wrapping [ErrTruncated]
// (default [DefaultIdleTimeout]; zero or less keeps the default). A read
// also stops, without waiting, where the stream says nothing more is
// pending.
func WithIdleTimeout(d time.Duration) OpenOption { return func(c *openConfig) { c.idle = d } }

// Open opens the log at location:
//
//   - a URL with a scheme (nats://host:4222, tls://…): a JetStream stream on
//     that server, read with the options of [WithNATSOptions], [WithStream]
//     and [WithSubjectPrefix];
//   - a directory: the data directory of the embedded default (as written by
//     `stagereplay demo` or an Engine on the embedded store), which must
//     not be in use: while a server holds it the error wraps
//     natsstore.ErrDirLocked and names the holder (read a live store by
//     its server's URL);
//   - a file: a JSON Lines export ("-" reads standard input).
//
// Errors wrap [ErrSource] and say what is wrong.
func Open(ctx context.Context, location string, opts ...OpenOption) (Source, error) {
	var c openConfig
	for _, o := range opts {
		o(&c)
	}
	switch {
	case location == "":
		return nil, fmt.Errorf("%w: no location given (a nats:// URL, a data directory or a .jsonl file)", ErrSource)
	case location == "-":
		return &fileSource{r: os.Stdin, name: "standard input", progress: c.progress}, nil
	case strings.Contains(location, "://"):
		return openNATS(ctx, location, c)
	}
	fi, err := os.Stat(location)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist", ErrSource, location)
		}
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	if fi.IsDir() {
		return openDataDir(ctx, location, c)
	}
	f, err := os.Open(location)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	return &fileSource{r: f, c: f, name: location, size: fi.Size(), progress: c.progress}, nil
}

// StoreSource returns a Source over an eventstore.Store: ReadAll for the
// whole log, Load for one meeting. Close does not close the store.
func StoreSource(s eventstore.Store) Source { return &storeSource{s: s} }

type storeSource struct {
	s eventstore.Store
}

func (s *storeSource) Events(ctx context.Context, meetingID string) iter.Seq2[events.Envelope, error] {
	if meetingID != "" {
		return s.s.Load(ctx, meetingID, 1)
	}
	return s.s.ReadAll(ctx, 1)
}

func (s *storeSource) Close() error { return nil }

// DecodeError is a line of a JSON Lines file, or a message of a stream, that
// is not a valid event. It wraps events.ErrMalformed.
type DecodeError struct {
	// Name is the file's (or stream's) name, Line the line number (from 1)
	// in a file, Seq the stream sequence in a stream.
	Name string
	Line int
	Seq  uint64
	// MeetingID is the meeting the entry names despite the damage (a JSON
	// object's "meeting" member holding a valid id), or "" (see [Import]).
	MeetingID string
	Err       error
}

func (e *DecodeError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s sequence %d: %v", e.Name, e.Seq, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.Name, e.Line, e.Err)
}

// Unwrap returns the decoding error (which wraps events.ErrMalformed).
func (e *DecodeError) Unwrap() error { return e.Err }

// ReadJSONL yields the events of a JSON Lines stream (one event per line,
// blank lines ignored), as [Source.Events] does: a malformed line is yielded
// as a [*DecodeError] and reading goes on if the caller keeps ranging.
func ReadJSONL(r io.Reader, name string) iter.Seq2[events.Envelope, error] {
	return (&fileSource{r: r, name: name}).Events(context.Background(), "")
}

type fileSource struct {
	read     int // how many times Events has begun
	r        io.Reader
	c        io.Closer
	name     string
	size     int64
	progress Progress
}

// Decoding dominates replay time, so a file is decoded in parallel: one
// goroutine reads batches of lines, GOMAXPROCS workers decode them, and
// the events are yielded in file order.
const batchLines = 256

type lineBatch struct {
	first int // line number of lines[0]
	lines [][]byte
	cut   int // 1 + the index of the file's last line when no newline ends it
	out   []decoded
	done  chan struct{}
}

type decoded struct {
	e    events.Envelope
	err  error
	keep bool
}

func (f *fileSource) Events(ctx context.Context, meetingID string) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		// A second read starts the file again; a pipe can be read once.
		sk, seekable := f.r.(io.Seeker)
		seekable = seekable && f.c != nil
		if f.read > 0 {
			if !seekable {
				yield(events.Envelope{}, fmt.Errorf("replay: read %s again: it is not a regular file", f.name))
				return
			}
			if _, err := sk.Seek(0, io.SeekStart); err != nil {
				yield(events.Envelope{}, fmt.Errorf("replay: read %s again: %w", f.name, err))
				return
			}
		}
		f.read++
		// A line that does not hold the meeting id as a JSON string cannot
		// be one of its events: skip it without decoding.
		var needle []byte
		if meetingID != "" {
			needle, _ = json.Marshal(meetingID)
		}
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() {
			cancel()
			if seekable {
				wg.Wait() // the next read seeks the same file
			}
		}()
		workers := max(1, runtime.GOMAXPROCS(0))
		jobs := make(chan *lineBatch, 2*workers)
		order := make(chan *lineBatch, 4*workers)
		var readErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(order)
			defer close(jobs)
			readErr = f.readLines(ctx, jobs, order)
		}()
		for range workers {
			go func() {
				for b := range jobs {
					for i, l := range b.lines {
						d := &b.out[i]
						if len(l) == 0 || (needle != nil && !bytes.Contains(l, needle)) {
							continue
						}
						e, err := events.Unmarshal(l)
						if err != nil && i+1 == b.cut {
							// The file stops in the middle of an event.
							err = fmt.Errorf("%w: the file ends in the middle of an event (its last line has no newline and does not decode): %w", ErrTruncated, err)
						}
						switch {
						case err != nil:
							d.err, d.keep = &DecodeError{Name: f.name, Line: b.first + i, MeetingID: meetingOfLine(l), Err: err}, true
						case meetingID == "" || e.MeetingID == meetingID:
							d.e, d.keep = e, true
						}
					}
					close(b.done)
				}
			}()
		}
		for b := range order {
			select {
			case <-b.done:
			case <-ctx.Done():
			}
			if err := ctx.Err(); err != nil {
				yield(events.Envelope{}, err)
				return
			}
			for i := range b.out {
				if d := &b.out[i]; d.keep && !yield(d.e, d.err) {
					return
				}
			}
		}
		if readErr != nil {
			yield(events.Envelope{}, readErr)
		}
	}
}

// read splits the file into batches of lines, in order.
func (f *fileSource) readLines(ctx context.Context, jobs, order chan<- *lineBatch) error {
	br := bufio.NewReaderSize(f.r, 1<<20)
	var done int64
	lastReport := int64(-1 << 62)
	b := &lineBatch{first: 1}
	send := func() bool {
		b.out = make([]decoded, len(b.lines))
		b.done = make(chan struct{})
		for _, ch := range []chan<- *lineBatch{order, jobs} {
			select {
			case ch <- b:
			case <-ctx.Done():
				return false
			}
		}
		b = &lineBatch{first: b.first + len(b.lines)}
		return true
	}
	for {
		l, err := br.ReadBytes('\n')
		done += int64(len(l))
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("replay: read %s: %w", f.name, err)
		}
		if f.progress != nil && (done-lastReport > 1<<20 || err != nil) {
			f.progress(done, f.size)
			lastReport = done
		}
		if err != nil && len(l) == 0 {
			break
		}
		b.lines = append(b.lines, bytes.TrimSpace(l))
		if err != nil {
			b.cut = len(b.lines)
		}
		if len(b.lines) == batchLines && !send() {
			return nil
		}
		if err != nil {
			break
		}
	}
	if len(b.lines) > 0 {
		send()
	}
	return nil
}

func (f *fileSource) Close() error {
	if f.c != nil {
		return f.c.Close()
	}
	return nil
}

// WriteJSONL writes evs to w as JSON Lines, one event per line in the wire
// format of package events, and returns how many it wrote. It stops at the
// first error evs yields.
func WriteJSONL(w io.Writer, evs iter.Seq2[events.Envelope, error]) (int, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	n := 0
	for e, err := range evs {
		if err != nil {
			bw.Flush()
			return n, err
		}
		b, err := events.Marshal(&e)
		if err != nil {
			bw.Flush()
			return n, err
		}
		bw.Write(b)
		if err := bw.WriteByte('\n'); err != nil {
			return n, err
		}
		n++
	}
	return n, bw.Flush()
}
