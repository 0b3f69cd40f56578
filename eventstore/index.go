package eventstore

import (
	"context"
	"time"

	"github.com/productdb/stage/events"
)

// DefaultKeyRetention is how long a store's [CommandIndex] remembers a
// command's idempotency key unless configured otherwise: a retry within it
// is recognised however many commands came between, across restarts and
// cache evictions. It is what idempotency stores usually promise (a day).
const DefaultKeyRetention = 24 * time.Hour

// CommandRecord is what a [CommandIndex] remembers of one command.
type CommandRecord struct {
	// Version is the version of the command's first event: where it was
	// to be stored. Whether it was is told by the log: the meeting's event
	// at Version carries the command's key, or the append never happened.
	Version uint64
	// Time is the command's decision time (its events' Time).
	Time time.Time
}

// CommandIndex is implemented by stores that remember the idempotency keys
// of commands for a time-based retention, beside the log, so that a retry
// older than the state's recent window (aggregate.CommandWindow) is still
// recognised and never applied twice. The engine checks for it with a type
// assertion, as it does for [Snapshotter].
//
// The engine records a command caller-keyed before appending its events
// (so a record may name an append that never happened, never the other way
// round), and on a retry it finds the record and checks the log at its
// version. Keys are [events.CommandKey]s: scoped to the command's actor.
type CommandIndex interface {
	// RecordCommand remembers that the command with key k of the meeting
	// is to be stored from rec.Version on, replacing an earlier record of
	// k. It returns once the record is as durable as the store's appends.
	RecordCommand(ctx context.Context, meetingID string, k events.CommandKey, rec CommandRecord) error

	// FindCommand returns the record of k in the meeting, if the store
	// still keeps it. Records are kept for at least [CommandIndex.KeyRetention]
	// after their Time and may be kept longer.
	FindCommand(ctx context.Context, meetingID string, k events.CommandKey) (CommandRecord, bool, error)

	// KeyRetention returns how long records are kept at least.
	KeyRetention() time.Duration
}
