package replay

// This file holds everything that depends on where the embedded default and
// JetStream keep the log. Until the JetStream store is on main, the embedded
// default's data directory is a JSON Lines file (events.jsonl) behind an
// in-memory store.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// dataFile is the log's file inside a data directory.
const dataFile = "events.jsonl"

// DataDir is the embedded default's store, kept in a data directory.
type DataDir struct {
	// Store is the store to give an Engine.
	Store eventstore.Store
	// Dir is the data directory.
	Dir   string
	close func() error
}

// Close flushes and closes the store.
func (d *DataDir) Close() error { return d.close() }

// OpenDataDir opens (creating if needed) the embedded default's store in
// dir.
func OpenDataDir(ctx context.Context, dir string) (*DataDir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	mem := eventstore.NewMemory()
	path := filepath.Join(dir, dataFile)
	if f, err := os.Open(path); err == nil {
		_, err := Import(ctx, mem, ReadJSONL(f, path))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSource, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	s := &fileStore{Memory: mem, f: f}
	return &DataDir{Store: s, Dir: dir, close: s.close}, nil
}

// fileStore is a Memory store that also appends every event to a file.
type fileStore struct {
	*eventstore.Memory
	mu sync.Mutex
	f  *os.File
}

func (s *fileStore) Append(ctx context.Context, meetingID string, expectedVersion uint64, evs []events.Envelope) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return 0, eventstore.ErrClosed
	}
	pos, err := s.Memory.Append(ctx, meetingID, expectedVersion, evs)
	if err != nil {
		return 0, err
	}
	var buf []byte
	for i := range evs {
		e := evs[i]
		e.Seq = pos - uint64(len(evs)-1-i)
		b, err := events.Marshal(&e)
		if err != nil {
			return 0, err
		}
		buf = append(append(buf, b...), '\n')
	}
	if _, err := s.f.Write(buf); err != nil {
		return 0, err
	}
	return pos, nil
}

func (s *fileStore) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

func openDataDir(_ context.Context, dir string, c openConfig) (Source, error) {
	path := filepath.Join(dir, dataFile)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s is not a data directory (no %s)", ErrSource, dir, dataFile)
		}
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	return &fileSource{r: f, c: f, name: path, size: fi.Size(), progress: c.progress}, nil
}

func openNATS(_ context.Context, location string, _ openConfig) (Source, error) {
	u, err := url.Parse(location)
	if err != nil {
		return nil, fmt.Errorf("%w: bad URL %q: %v", ErrSource, location, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: bad URL %q: no host", ErrSource, location)
	}
	return nil, fmt.Errorf("%w: %s: JetStream sources are not available in this build", ErrSource, location)
}
