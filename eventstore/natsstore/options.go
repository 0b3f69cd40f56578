package natsstore

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/eventstore"
)

// Defaults of [New].
const (
	// DefaultStream is the stream name used without [WithStream].
	DefaultStream = "STAGE"
	// DefaultSubjectPrefix is the subject prefix used without
	// [WithSubjectPrefix]: meeting m's events are on "stage.events.m".
	DefaultSubjectPrefix = "stage.events"
)

// Option configures [New]. Options validate their argument: New returns
// the first option error, wrapping [ErrInvalidOption].
type Option func(*config) error

// ErrInvalidOption is wrapped by the error of an [Option] or
// [ServerOption] given a bad argument.
var ErrInvalidOption = errors.New("natsstore: invalid option")

type config struct {
	stream   string
	prefix   string
	replicas int
	storage  jetstream.StorageType
	maxAge   time.Duration
	logger   *slog.Logger
	groupMin int // 0: no group commit

	keyRetention time.Duration
	markInterval time.Duration

	requestTimeout time.Duration // outcome.go
	leaderTimeout  time.Duration
}

func defaultConfig() config {
	return config{
		stream:   DefaultStream,
		prefix:   DefaultSubjectPrefix,
		replicas: 1,
		storage:  jetstream.FileStorage,
		logger:   slog.New(slog.DiscardHandler),

		keyRetention: eventstore.DefaultKeyRetention,
		markInterval: DefaultMarkInterval,

		requestTimeout: DefaultRequestTimeout,
		leaderTimeout:  DefaultLeaderTimeout,
	}
}

func badOption(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// WithStream sets the stream's name (default [DefaultStream]). A name is
// 1 to 255 printable ASCII characters without white space, '.', '*', '>',
// '/' or '\'.
func WithStream(name string) Option {
	return func(c *config) error {
		if name == "" || len(name) > 255 || strings.ContainsAny(name, ".*>/\\") {
			return badOption("stream name %q", name)
		}
		for _, r := range name {
			if r <= ' ' || r > '~' {
				return badOption("stream name %q: character %U", name, r)
			}
		}
		c.stream = name
		return nil
	}
}

// WithSubjectPrefix sets the subject prefix (default
// [DefaultSubjectPrefix]): the stream holds the subjects "<prefix>.>" and
// meeting m's events are published on "<prefix>.m". The prefix is one or
// more dot-separated tokens of printable ASCII with no wildcard.
func WithSubjectPrefix(p string) Option {
	return func(c *config) error {
		if p == "" {
			return badOption("empty subject prefix")
		}
		for tok := range strings.SplitSeq(p, ".") {
			if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, "*>") {
				return badOption("subject prefix %q: bad token %q", p, tok)
			}
			for _, r := range tok {
				if r <= ' ' || r > '~' {
					return badOption("subject prefix %q: character %U", p, r)
				}
			}
		}
		c.prefix = p
		return nil
	}
}

// WithReplicas sets how many servers hold the stream (default 1; 3 or 5 in
// a cluster). An existing stream must have at least this many.
func WithReplicas(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 5 {
			return badOption("replicas %d, want 1 to 5", n)
		}
		c.replicas = n
		return nil
	}
}

// WithStorage sets the stream's storage (default jetstream.FileStorage).
// Memory storage loses every event when the server stops: use it for tests.
func WithStorage(st jetstream.StorageType) Option {
	return func(c *config) error {
		if st != jetstream.FileStorage && st != jetstream.MemoryStorage {
			return badOption("storage type %d", st)
		}
		c.storage = st
		return nil
	}
}

// WithMaxAge makes the stream drop events older than d (default 0: keep
// every event forever). Only for deployments that keep no meeting longer
// than d: a meeting whose first events have expired can no longer be
// loaded (the store reports the gap as corruption).
func WithMaxAge(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 || (d > 0 && d < time.Second) {
			return badOption("max age %v, want 0 or at least 1s", d)
		}
		c.maxAge = d
		return nil
	}
}

// WithKeyRetention sets how long the command index keeps a command's
// idempotency key (default eventstore.DefaultKeyRetention): a retry within
// it is recognised however many commands came between. It is the TTL of
// the bucket [KeyBucket]; every store on one stream must use the same.
func WithKeyRetention(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return badOption("key retention %v, want at least 1s", d)
		}
		c.keyRetention = d
		return nil
	}
}

// DefaultGroupMin is the group-commit threshold [OpenEmbedded] uses.
const DefaultGroupMin = 32

// WithGroupCommit turns group commit on (min >= 2) or off (0, the default
// of [New]). With it on, whenever at least min single-event appends are
// waiting at once, they are stored as one atomic batch (at most [MaxGroup]),
// each still guarded by its own meeting's expected last sequence; fewer are
// published one by one as usual. Turn it on for a server that syncs before
// it acknowledges (the embedded default; `sync_interval: always`), where it
// replaces one disk sync per event with one per group. On a server with the
// default lazy sync a lone guarded publish is far cheaper than a batch:
// leave it off there.
func WithGroupCommit(min int) Option {
	return func(c *config) error {
		if min == 1 || min < 0 || min > MaxGroup {
			return badOption("group commit threshold %d, want 0 (off) or 2 to %d", min, MaxGroup)
		}
		c.groupMin = min
		return nil
	}
}

// WithLogger sets the logger for provisioning, conflicts and store errors
// (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return badOption("nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithMarkInterval sets how often, at most, the store writes its
// high-water marks (see [MarksBucket]) after appends: in the background,
// the marks of the meetings appended to and then the stream's, at most
// once per d (default [DefaultMarkInterval], one second), and on Close.
// Events acknowledged within the last d before a crash that also loses
// them are not noticed as lost. Each flush writes one mark per meeting
// appended to since the last: over 1,000 busy meetings, 100ms costs
// 10-17% of the commands per second on two cores, one second nothing
// measurable. 0 is the strict mode: every Append writes its marks before
// it returns, two more writes per append. d is 0 or 1ms to one minute.
func WithMarkInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 || (d > 0 && d < time.Millisecond) || d > time.Minute {
			return badOption("mark interval %v, want 0 (strict) or 1ms to 1m", d)
		}
		c.markInterval = d
		return nil
	}
}
