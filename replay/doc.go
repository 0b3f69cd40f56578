// Package replay answers questions about a stage audit log from the log
// alone: the roster and request queue at any version or time, a meeting's
// history, a timeline picture, and whether the log is intact and every event
// in it was legal when it happened.
//
// # Sources
//
// A [Source] is a log to read: [Open] takes a nats:// URL (a JetStream
// stream, with nats.go options for credentials and TLS), the data directory
// of the embedded default, or a JSON Lines export file; [StoreSource] wraps
// any eventstore.Store. Events come in stream order; a malformed entry is
// reported as an error wrapping events.ErrMalformed and reading can go on.
// No read waits without a bound ([WithIdleTimeout]); what a stream lost is
// reported as a [*LostError] ([ErrMissing], [ErrTruncated]), and a file cut
// in the middle of an event as an error wrapping [ErrTruncated].
//
// # Replaying
//
// A [Filter] selects a meeting and how far to go (a version, a time). The
// replay is the same fold the engine and the live projections run
// (aggregate.Evolve), so [Roster] gives, byte for byte, the roster the
// engine served at that version:
//
//	src, err := replay.Open(ctx, "stage-data")            // or "nats://…", "audit.jsonl"
//	defer src.Close()
//	r, err := replay.Roster(ctx, src, replay.Filter{MeetingID: "webinar-42", UpToVersion: 57})
//	h, err := replay.History(ctx, src, replay.Filter{MeetingID: "webinar-42"})
//	err = replay.WriteTimeline(w, h, replay.TimelineOptions{})
//
// # Verifying
//
// [Verify] reads a whole log and reports every [Finding] with its stream
// sequence, meeting, version and reason: stream sequences out of order,
// duplicate event ids, gaps or reordering in a meeting's versions, a hash
// that does not match the event (an edit), a PrevHash that does not link to
// the previous event (a deletion, insertion or re-hashed edit), time running
// backwards, and events that were not legal when they happened: the command
// each event records ([aggregate.CommandOf]) is decided again with aggregate.Decide on
// the state just before it, and must be accepted and give the same event. A
// kick by a user who was not a host at that moment is a finding even when
// the hash chain was forged to match. A lost end is a [Truncated] finding,
// lost messages [Missing], and a log with no events an [Empty] one: nothing
// verified is not clean. A finding that follows from an earlier one names
// it (Finding.Cause); [Report.Groups] gives each cause with its
// consequences.
//
// Event types with no known command (added after this package) are counted
// in [Report.Unchecked] rather than reported: their versions and hashes are
// still checked. Extend [aggregate.CommandOf] when adding commands.
package replay
