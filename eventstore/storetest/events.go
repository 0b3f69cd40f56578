package storetest

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/events"
)

// Base is the time of version 1 of every [Chain]; version v is Base plus v
// seconds.
var Base = time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)

// Chain builds sealed, well-formed events for one meeting, linked by their
// hashes as a store expects them: each ParticipantJoined for a user "u<v>".
// The zero value is not usable; call [NewChain].
type Chain struct {
	// MeetingID is the meeting the events belong to.
	MeetingID string
	// Version is the version of the last event handed out by Next.
	Version uint64
	// Last is the hash of that event (zero before the first).
	Last events.Hash
}

// NewChain returns a chain for meetingID at version 0.
func NewChain(meetingID string) *Chain { return &Chain{MeetingID: meetingID} }

// Next returns the chain's next n events (versions Version+1 ... Version+n),
// sealed, and advances the chain past them.
func (c *Chain) Next(n int) []events.Envelope {
	evs := c.Peek(n)
	if n > 0 {
		c.Version += uint64(n)
		c.Last = evs[n-1].Hash
	}
	return evs
}

// Peek returns what Next(n) would return without advancing the chain: use it
// for appends that are expected to fail.
func (c *Chain) Peek(n int) []events.Envelope {
	evs := make([]events.Envelope, n)
	prev := c.Last
	for i := range evs {
		evs[i] = Event(c.MeetingID, c.Version+uint64(i)+1, prev)
		prev = evs[i].Hash
	}
	return evs
}

// Event returns one sealed event of meetingID at version, linked to prev:
// a ParticipantJoined of user "u<version>" with a fresh id and command id.
// It does not validate meetingID, so it can build hostile input.
func Event(meetingID string, version uint64, prev events.Hash) events.Envelope {
	e := events.Envelope{
		ID:            uuid.Must(uuid.NewV7()),
		MeetingID:     meetingID,
		Version:       version,
		Type:          events.TypeParticipantJoined,
		Time:          Base.Add(time.Duration(version) * time.Second),
		Actor:         "",
		CommandID:     uuid.NewString(),
		CorrelationID: fmt.Sprintf("corr-%d", version),
		Schema:        events.SchemaVersion,
		Payload: &events.ParticipantJoined{
			UserID:      fmt.Sprintf("u%d", version),
			Permissions: events.Permissions{StageAccess: events.CanRequest, AcceptStageRequests: version%2 == 0},
		},
	}
	if err := e.Seal(prev); err != nil {
		panic(err) // unreachable: the payload is set
	}
	return e
}

// Equal reports whether a and b are the same event: every field, the
// payload and the hashes included, compared through the wire encoding. Seq
// is compared only when both are non-zero.
func Equal(a, b events.Envelope) bool {
	if a.Seq == 0 || b.Seq == 0 {
		a.Seq, b.Seq = 0, 0
	}
	x, err1 := events.Marshal(&a)
	y, err2 := events.Marshal(&b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
