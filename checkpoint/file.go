package checkpoint

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"sync"
)

// Sink is where an Engine writes its signed checkpoints: a [File], the
// JetStream store (natsstore.Store), or any other durable place.
type Sink interface {
	// WriteCheckpoints stores cps durably before returning nil.
	WriteCheckpoints(ctx context.Context, cps []Signed) error
}

// File is an append-only JSON Lines file of signed checkpoints, one per
// line, kept outside the store: a copy that someone who can rewrite the
// store's files does not necessarily reach. It is safe for concurrent use.
type File struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// OpenFile opens (creating if needed, mode 0644) the checkpoint file at path
// for appending.
func OpenFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return &File{f: f, path: path}, nil
}

// WriteCheckpoints implements [Sink]: it appends one line per checkpoint,
// in one write, and syncs the file to disk.
func (f *File) WriteCheckpoints(_ context.Context, cps []Signed) error {
	if len(cps) == 0 {
		return nil
	}
	var buf bytes.Buffer
	for i := range cps {
		b, err := Marshal(&cps[i])
		if err != nil {
			return fmt.Errorf("checkpoint: %s: %w", f.path, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return fmt.Errorf("checkpoint: %s: %w", f.path, os.ErrClosed)
	}
	if _, err := f.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("checkpoint: %s: %w", f.path, err)
	}
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("checkpoint: %s: %w", f.path, err)
	}
	return nil
}

// Close closes the file. Later writes fail; Close is idempotent.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return nil
	}
	err := f.f.Close()
	f.f = nil
	return err
}

// LineError is a line of a checkpoint file that is not a checkpoint. It
// wraps [ErrMalformed].
type LineError struct {
	Name string
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.Name, e.Line, e.Err) }

// Unwrap returns the parsing error.
func (e *LineError) Unwrap() error { return e.Err }

// Read yields the checkpoints of a JSON Lines stream, in order (blank lines
// ignored). A line that is not a checkpoint is yielded as a [*LineError] and
// reading goes on if the caller keeps ranging; a read error ends it. A last
// line cut short (no newline, not a checkpoint: a write torn by a crash) is
// a LineError too. Signatures are not checked.
func Read(r io.Reader, name string) iter.Seq2[Signed, error] {
	return func(yield func(Signed, error) bool) {
		br := bufio.NewReaderSize(r, 64<<10)
		for n := 1; ; n++ {
			line, err := br.ReadBytes('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				yield(Signed{}, fmt.Errorf("checkpoint: read %s: %w", name, err))
				return
			}
			if l := bytes.TrimSpace(line); len(l) > 0 {
				s, perr := Parse(l)
				if perr != nil {
					perr = &LineError{Name: name, Line: n, Err: perr}
				}
				if !yield(s, perr) {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
}

// ReadFile reads every checkpoint of the file at path: see [Read]. It
// returns the checkpoints that parse and the errors of the lines that do
// not, joined.
func ReadFile(path string) ([]Signed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	var out []Signed
	var errs []error
	for s, err := range Read(f, path) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}
