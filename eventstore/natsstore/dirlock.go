package natsstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// ErrDirLocked is wrapped by [*DirLockedError]: the data directory given to
// [StartServer] or [OpenEmbedded] is held by another server, in this process
// or another one.
var ErrDirLocked = errors.New("natsstore: data directory is in use")

// DirLockedError is returned by [StartServer] (and so [OpenEmbedded]) when
// another embedded server holds the data directory. Two servers on one
// directory would each keep their own view of the files and lose each
// other's acknowledged writes, so the second one is refused before it
// touches anything. Reach the running one through its server's URL instead
// (start it with [WithListen]).
type DirLockedError struct {
	// Dir is the data directory.
	Dir string
	// Holder describes the server holding Dir as it recorded itself in the
	// lock file, for example "pid 1234 (stagereplay) on host db1 since
	// 2026-12-04T14:00:00Z"; empty when the file names nobody (a holder
	// that is still writing it, or one older than the record).
	Holder string
}

func (e *DirLockedError) Error() string {
	h := e.Holder
	if h == "" {
		h = "an unknown holder"
	}
	return fmt.Sprintf("natsstore: data directory %s is in use by %s; to read or write a live store, connect to its server's nats:// URL (see WithListen) instead of opening its directory", e.Dir, h)
}

// Unwrap returns [ErrDirLocked].
func (e *DirLockedError) Unwrap() error { return ErrDirLocked }

// LockFileName is the file in a data directory that a running embedded
// server holds locked, and in which it records who it is.
const LockFileName = "stage.lock"

// dirLock is a held data directory: the open, locked lock file.
type dirLock struct {
	f    *os.File
	once sync.Once
}

// lockDir takes dir's lock (see tryLock) and records this process in the
// lock file, or returns a *DirLockedError naming the holder.
func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("natsstore: lock data directory: %w", err)
	}
	ok, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("natsstore: lock data directory: %s: %w", path, err)
	}
	if !ok {
		f.Close()
		return nil, &DirLockedError{Dir: dir, Holder: readHolder(path)}
	}
	if err := writeHolder(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("natsstore: lock data directory: record holder in %s: %w", path, err)
	}
	return &dirLock{f: f}, nil
}

// release empties the lock file and closes it, which lets the lock go.
// Later calls do nothing.
func (l *dirLock) release() {
	if l == nil {
		return
	}
	l.once.Do(func() {
		l.f.Truncate(0) // best effort: a stale record is overwritten by the next holder anyway
		l.f.Close()
	})
}

// writeHolder replaces the lock file's content with one line naming this
// process.
func writeHolder(f *os.File) error {
	prog := filepath.Base(os.Args[0])
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	line := "pid " + strconv.Itoa(os.Getpid()) + " (" + prog + ") on host " + host +
		" since " + time.Now().UTC().Format(time.RFC3339) + "\n"
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(line), 0)
	return err
}

// readHolder returns the first line of the lock file at path, at most 256
// bytes with control characters dropped; "" if there is none.
func readHolder(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 256))
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
