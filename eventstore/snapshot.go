package eventstore

import (
	"context"

	"github.com/productdb/stage/events"
)

// Snapshot is a meeting's state as of one event of its log, encoded by
// the engine (see aggregate.State.MarshalBinary). It is a cache: a reader
// checks that the log's event at Version has Hash before using it, and
// losing a snapshot loses nothing.
type Snapshot struct {
	// Version and Hash are the version and hash of the last event the state
	// covers.
	Version uint64
	Hash    events.Hash
	// Seq is that event's global position: a store may use it to find the
	// event without reading the meeting's earlier ones.
	Seq uint64
	// Data is the encoded state.
	Data []byte
}

// Snapshotter is implemented by stores that keep a snapshot per meeting
// beside the log, as database/sql drivers implement optional interfaces:
// the engine checks for it with a type assertion.
type Snapshotter interface {
	// SaveSnapshot stores snap as the meeting's snapshot, replacing any
	// older one. A snapshot with a Version below the stored one's may be
	// ignored.
	SaveSnapshot(ctx context.Context, meetingID string, snap Snapshot) error

	// LoadSnapshot returns the meeting's latest snapshot, if it has one. The
	// snapshot is not checked against the log.
	LoadSnapshot(ctx context.Context, meetingID string) (Snapshot, bool, error)
}
