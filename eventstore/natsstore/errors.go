package natsstore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrStreamConfig is wrapped by [*StreamConfigError]: an existing stream
// whose configuration cannot keep the store's guarantees.
var ErrStreamConfig = errors.New("natsstore: stream configuration cannot keep the event log's guarantees")

// StreamConfigError reports why an existing stream cannot hold the event
// log. [New] returns it instead of using (or changing) such a stream:
// fix the stream, or point the store at another one.
type StreamConfigError struct {
	// Stream is the stream's name.
	Stream string
	// Problems lists each setting that is wrong, and why.
	Problems []string
}

func (e *StreamConfigError) Error() string {
	return fmt.Sprintf("natsstore: stream %s cannot hold the event log: %s", e.Stream, strings.Join(e.Problems, "; "))
}

// Unwrap returns [ErrStreamConfig].
func (e *StreamConfigError) Unwrap() error { return ErrStreamConfig }

// ErrTooLarge is returned (wrapped, together with
// eventstore.ErrInvalidEvents) by Append for an event whose encoding is
// larger than the server accepts, or for more events than one atomic batch
// may hold. Nothing was stored.
var ErrTooLarge = errors.New("natsstore: too large")

// isWrongLastSequence reports whether err is JetStream's "wrong last
// sequence" API error: the optimistic-concurrency guard failed. It matches
// by error code (10071, or 10164 on replicated streams), never by text.
func isWrongLastSequence(err error) bool {
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return false
	}
	return api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}
