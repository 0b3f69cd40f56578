package eventstore

import "context"

// HeadFollower is implemented by stores that can tell a reader, without a
// round trip per read, that a meeting has new events: they report every
// append, by any writer, as it is stored. An Engine with
// stage.WithCachedReads uses it to serve reads from its cache while it
// knows the cache holds every event of the meeting the store reported.
type HeadFollower interface {
	// FollowHeads starts reporting appends, and returns once every event
	// stored from then on will be reported: for each event, appended is
	// called with its meeting and store position (Seq), until ctx is
	// done. Calls may come from several goroutines and, for one meeting,
	// out of order: keep the highest position. No call is made for an
	// event stored before FollowHeads returned.
	//
	// current reports whether the reports are current: true when every
	// event the store has acknowledged was reported, up to the delivery
	// latency of the store's own notifications (none in memory; on
	// JetStream, a message from the server); false while reports may be
	// missing or late (the connection was lost, the store is closed, ctx
	// is done), until the follower has caught up again.
	FollowHeads(ctx context.Context, appended func(meetingID string, seq uint64)) (current func() bool, err error)
}
