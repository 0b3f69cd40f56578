package stage

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/events"
)

// Option configures an [Engine]. Options validate their arguments: [New]
// returns the first option error.
type Option func(*config) error

type config struct {
	clock       func() time.Time
	logger      *slog.Logger
	maxAttempts int
	backoffBase time.Duration
	backoffMax  time.Duration
	autoTick    bool
	cacheSize   int

	snapshotEvery uint64
	snapshotIdle  time.Duration
	cachedReads   bool
	closers       []io.Closer

	signingKey      ed25519.PrivateKey
	checkpointEvery time.Duration
	checkpointSinks []checkpoint.Sink

	writeTimeout time.Duration // timeouts.go
	closeTimeout time.Duration

	telemetry *telemetryConfig // WithTelemetry (telemetry.go)
}

func defaultConfig() config {
	return config{
		clock:       time.Now,
		logger:      slog.New(slog.DiscardHandler),
		maxAttempts: 10,
		backoffBase: time.Millisecond,
		backoffMax:  100 * time.Millisecond,
		autoTick:    true,
		cacheSize:   DefaultCacheSize,

		snapshotEvery: DefaultSnapshotEvery,
		snapshotIdle:  DefaultSnapshotIdle,

		writeTimeout: DefaultBackgroundWriteTimeout,
		closeTimeout: CloseSnapshotTimeout,
	}
}

// WithClock sets the clock that stamps events (default time.Now). The engine
// never lets a meeting's time go backwards: an event's time is the later of
// the clock and the meeting's last event.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("stage: WithClock: nil clock")
		}
		c.clock = now
		return nil
	}
}

// WithLogger sets the logger for retries, conflicts and store errors
// (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("stage: WithLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithRetry bounds how a command is retried when another writer appended to
// its meeting first: at most attempts tries in all (default 10), sleeping
// between them with exponential backoff from base up to max, with jitter
// (defaults 1ms and 100ms).
func WithRetry(attempts int, base, max time.Duration) Option {
	return func(c *config) error {
		if attempts < 1 {
			return fmt.Errorf("stage: WithRetry: attempts %d < 1", attempts)
		}
		if base < 0 || max < base {
			return fmt.Errorf("stage: WithRetry: backoff base %v, max %v", base, max)
		}
		c.maxAttempts, c.backoffBase, c.backoffMax = attempts, base, max
		return nil
	}
}

// WithAutoTick turns the tick scheduler on or off (default on). When on,
// the Engine records the lapses of every meeting it holds at each meeting's
// next deadline (see [Engine.Tick]), waiting on real timers for the time
// the clock says is left. Turn it off when the clock is a test clock, or
// when another process ticks the meetings; reads and commands observe
// deadlines at the clock's now either way.
func WithAutoTick(on bool) Option {
	return func(c *config) error {
		c.autoTick = on
		return nil
	}
}

// DefaultCacheSize is how many meetings an Engine keeps in memory unless
// told otherwise (see [WithCacheSize]).
const DefaultCacheSize = 10_000

// WithCacheSize bounds how many meetings' states the engine keeps cached
// (default [DefaultCacheSize]). When the bound is passed, the least recently
// used idle meeting is dropped; it is reloaded from the store (from a
// snapshot, where the store keeps them) on its next use.
func WithCacheSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("stage: WithCacheSize: %d < 1", n)
		}
		c.cacheSize = n
		return nil
	}
}

// DefaultSnapshotEvery is how many events apart an Engine snapshots a
// meeting unless told otherwise (see [WithSnapshotEvery]).
const DefaultSnapshotEvery = 1000

// WithSnapshotEvery sets how often the engine snapshots a meeting, when
// its store keeps snapshots (implements eventstore.Snapshotter): once a
// meeting's state is n or more events past its latest snapshot, the
// engine writes a new one in the background, never on a command's path
// (default [DefaultSnapshotEvery]). It also writes one, in the background,
// for a meeting at least [SnapshotPastMin] events (or n, if smaller) past
// its latest snapshot when the meeting leaves the cache (see
// [WithCacheSize]), when [Engine.Close] runs, and when nobody has used the
// meeting for the idle period (see [WithSnapshotIdle]): so that the next
// load, by this Engine or another after a restart or a crash, starts at
// the meeting's head, not up to n events before it. Shorter meetings
// fold about as fast as a snapshot reads and get none until they grow.
// The store decides how a snapshot is kept (the JetStream store compresses
// it, and keeps one too large for a message in an object store bucket). A
// meeting that is not cached is
// loaded from its snapshot and the events after it, if the log's event at
// the snapshot's version has the hash the snapshot names; otherwise the
// snapshot is discarded and the meeting folded from its first event.
// Zero turns snapshots off: neither read nor written.
func WithSnapshotEvery(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("stage: WithSnapshotEvery: %d < 0", n)
		}
		c.snapshotEvery = uint64(n)
		return nil
	}
}

// DefaultSnapshotIdle is the idle period of [WithSnapshotIdle].
const DefaultSnapshotIdle = 30 * time.Second

// CloseWith makes [Engine.Close] close c once the Engine has stopped:
// the store the Engine runs on, and what the store runs on, so that one
// call shuts the whole thing down, e.g. the [natsstore.Embedded] of the
// embedded default or the [natsstore.Connection] to an external server:
//
//	emb, err := natsstore.OpenEmbedded(ctx, dir)
//	...
//	eng, err := stage.New(emb.Store, stage.CloseWith(emb))
//	...
//	defer eng.Close() // the Engine, then the store, the connection and the server
//
// Several CloseWith are closed in the reverse order of the options. Close
// returns their errors joined with its own. If New fails, it closes
// nothing: the caller still owns c.
//
// [natsstore.Embedded]: https://pkg.go.dev/github.com/productdb/stage/eventstore/natsstore#Embedded
// [natsstore.Connection]: https://pkg.go.dev/github.com/productdb/stage/eventstore/natsstore#Connection
func CloseWith(c io.Closer) Option {
	return func(cfg *config) error {
		if c == nil {
			return errors.New("stage: CloseWith: nil closer")
		}
		cfg.closers = append(cfg.closers, c)
		return nil
	}
}

// WithCachedReads serves Status, Roster and GetAccessRequests from the
// Engine's cache, with no read of the store, while the Engine knows the
// cache holds every event of the meeting: the Engine follows the store's
// appends (one follower per Engine, whatever the number of meetings; the
// store must implement [eventstore.HeadFollower], as the in-memory and
// JetStream stores do) and reads the store only for a meeting another
// writer has appended to since, or while the follower is not current (a
// lost connection, until it has caught up again).
//
// What a read then shows: every command this Engine acknowledged before
// the read began, always; another Engine's write as soon as the follower
// reported it. On the in-memory store that is before the other Engine's
// call returns, so nothing changes. On JetStream it is the delivery of one
// small message from the server (well under a millisecond on one machine,
// a network hop in a cluster): a read that begins right after another
// Engine acknowledged a command may not show it yet. Without this option
// (the default) every read catches up with the store first, and shows
// every write acknowledged before it began, by any Engine.
//
// Commands are not affected: they are decided on the cache and guarded by
// the store as always.
func WithCachedReads() Option {
	return func(c *config) error {
		c.cachedReads = true
		return nil
	}
}

// WithSnapshotIdle sets how long a cached meeting goes unused (no command,
// no read) before the engine snapshots it, if it is far enough past its
// latest snapshot (see [WithSnapshotEvery]; default
// [DefaultSnapshotIdle]). The engine checks every half period, walking its
// cache from the least recently used meeting and stopping at the first one
// used within the period. Zero turns idle snapshots off; snapshots on
// eviction and on Close remain.
func WithSnapshotIdle(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("stage: WithSnapshotIdle: %v < 0", d)
		}
		c.snapshotIdle = d
		return nil
	}
}

// WithSigningKey gives the engine the deployment's Ed25519 private key
// (see checkpoint.ParsePrivateKey). The engine signs its snapshots with it
// and never uses a snapshot that is unsigned or not signed by this key (it
// folds the meeting from the log instead), so that a snapshot forged in
// the store cannot change a decision; and it signs the checkpoints of
// [WithCheckpoints].
func WithSigningKey(key ed25519.PrivateKey) Option {
	return func(c *config) error {
		if len(key) != ed25519.PrivateKeySize {
			return fmt.Errorf("stage: WithSigningKey: a key of %d bytes, want an Ed25519 private key (%d bytes)", len(key), ed25519.PrivateKeySize)
		}
		c.signingKey = key
		return nil
	}
}

// WithCheckpoints makes the engine write signed checkpoints (package
// checkpoint): every interval, and on Close, one for each meeting it
// appended to since its last checkpoint, naming the meeting's version and
// head hash after its latest append, signed with the key of
// [WithSigningKey] (required), written to every sink (a checkpoint.File
// outside the store, the JetStream store itself, or both). A write that
// fails is logged and tried again at the next interval; Close returns the
// error of its last write. replay.Verify with the public key then proves
// a log against them: an edited, re-hashed or shortened history fails.
// What happened after the last checkpoint is not proven: a shorter
// interval narrows that window, at the cost of one signature per meeting
// changed per interval.
func WithCheckpoints(interval time.Duration, sinks ...checkpoint.Sink) Option {
	return func(c *config) error {
		if interval <= 0 {
			return fmt.Errorf("stage: WithCheckpoints: interval %v, want a positive duration", interval)
		}
		if len(sinks) == 0 {
			return errors.New("stage: WithCheckpoints: no sink")
		}
		for i, s := range sinks {
			if s == nil {
				return fmt.Errorf("stage: WithCheckpoints: sink %d is nil", i)
			}
		}
		c.checkpointEvery, c.checkpointSinks = interval, sinks
		return nil
	}
}

// ExecOption configures one command: an [Engine.Execute] call, or a call
// of any of the Engine's command methods (GrantAccess, Kick, ...), which
// all take the same trailing options.
type ExecOption func(*execConfig)

type execConfig struct {
	key, correlation, reason string
}

// WithIdempotencyKey sets the command's idempotency key. Keys belong to the
// command's actor (the backend's own commands form one scope): executing
// the same command again with the same key, by the same actor, on the same
// meeting appends nothing and reports the original outcome, with
// Result.Duplicate set, however many commands came between, for the
// store's key retention (eventstore.DefaultKeyRetention, a day, by
// default; see eventstore.CommandIndex), across restarts and cache
// evictions. The same key with a different command (another action,
// other targets or arguments) fails with aggregate.ErrKeyReused and
// stores nothing.
//
// Without a key, or with an empty one, the command's own ID is used, and
// when that is empty too the engine makes one up (the id of the command's
// first event, a UUID v7). A made-up key is learned from the acknowledged
// result, so it is remembered by the meeting's recent window only
// (aggregate.CommandWindow commands): to retry a command whose outcome is
// unknown, give it your own key.
func WithIdempotencyKey(key string) ExecOption {
	return func(c *execConfig) { c.key = key }
}

// WithCorrelationID records a correlation id (a request or trace id) in the
// command's events.
func WithCorrelationID(id string) ExecOption {
	return func(c *execConfig) { c.correlation = id }
}

// WithReason records a free-text reason (at most aggregate.MaxReasonLen
// bytes of UTF-8, no control character but newline and tab) in the event of a
// DenyAccess or a Kick, the only commands whose events carry one; the
// users it concerns are told it. On any other command a non-empty reason
// fails with aggregate.ErrInvalidCommand, nothing stored; so does a reason
// on a command whose own Reason field already holds a different one. An
// empty reason is no reason.
func WithReason(reason string) ExecOption {
	return func(c *execConfig) { c.reason = reason }
}

// withReason puts the reason of [WithReason] into cmd's action, or returns
// an error wrapping aggregate.ErrInvalidCommand when the action has no
// place for one.
func withReason(cmd *aggregate.Command, name, reason string) error {
	if reason == "" {
		return nil
	}
	bad := func(why string) error {
		return &aggregate.Error{Command: name, Err: aggregate.ErrInvalidCommand, Reason: "reason: " + why}
	}
	switch a := cmd.Action.(type) {
	case aggregate.DenyAccess:
		if a.Reason != "" && a.Reason != reason {
			return bad("the command has another reason already")
		}
		a.Reason = reason
		cmd.Action = a
	case aggregate.Kick:
		if a.Reason != "" && a.Reason != reason {
			return bad("the command has another reason already")
		}
		a.Reason = reason
		cmd.Action = a
	default:
		return bad(name + " records no reason (only DenyAccess and Kick do)")
	}
	return nil
}

// ErrClosed is returned by an Engine's methods after Close.
var ErrClosed = errors.New("stage: engine closed")

// validMeeting returns an aggregate error wrapping ErrInvalidCommand for a
// meeting id that must not be used.
func validMeeting(command, meetingID string) error {
	if err := events.ValidateID(meetingID); err != nil {
		return invalidID(command, "meeting", err)
	}
	return nil
}
