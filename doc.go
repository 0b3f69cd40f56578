// Package stage runs the stage of a webinar or livestream as an event-sourced
// engine: viewers ask to come on stage, hosts grant, deny or kick, users join
// and leave, and every one of those actions is an immutable event in an
// append-only log.
//
// The backend embeds an [Engine] over an [eventstore.Store] (the in-memory
// store, or JetStream) and calls it for each action of an authenticated user:
//
//	store := eventstore.NewMemory()
//	eng, err := stage.New(store)
//	eng.AddParticipant(ctx, "webinar-1", aggregate.Participant{UserID: "alice",
//		Permissions: aggregate.PresetHost.Permissions()})
//	eng.RequestAccess(ctx, "webinar-1", "bob")                    // bob asks
//	eng.GrantAccess(ctx, "webinar-1", "alice", []string{"bob"})   // alice lets him up
//	eng.Join(ctx, "webinar-1", "bob", stage.WithIdempotencyKey(k)) // bob goes on stage; safe to retry
//	eng.Kick(ctx, "webinar-1", "alice", []string{"bob"}, stage.WithReason("time is up"))
//
// # What the engine does with one command
//
//  1. Validate the meeting id and the command (bad input fails with
//     aggregate.ErrInvalidCommand before anything is read or stored).
//  2. Take the meeting's lock: commands on one meeting run one at a time in
//     an Engine; different meetings run in parallel.
//  3. Load the meeting's state: cached, caught up from the store on first
//     use and after any ambiguous failure, with every event's hash and link
//     to the previous one checked.
//  4. Decide with [aggregate.Decide] (pure: no I/O, no clock). A rejection
//     on the cached state is decided again after catching up with the
//     store, so it rests on state as new as the store's head; then it is
//     returned, and nothing is stored. A membership command with a user's
//     actor is refused: membership is the backend's authority.
//  5. A command whose idempotency key (scoped to its actor) was applied
//     returns its original events, Duplicate set; the same key with a
//     different command fails with aggregate.ErrKeyReused. Keys the
//     meeting's recent window no longer holds are looked up in the store's
//     command index (eventstore.CommandIndex), which keeps them for a
//     retention (a day by default), across restarts; a caller's key is
//     recorded there before the append.
//  6. Give each event a UUID v7, seal it into the meeting's hash chain, and
//     append it with the version the decision was made on.
//  7. If another writer appended first (eventstore.ErrConflict), catch up
//     and decide again, with backoff, at most WithRetry attempts.
//  8. Apply the events to the cached state with [aggregate.Evolve].
//
// Reads (Status, Roster, GetAccessRequests) catch the cached state up with
// the store first, so an Engine sees what other Engines on the same store
// wrote; with [WithCachedReads] they are served from the cache while the
// Engine knows no other writer appended to the meeting.
//
// # Where to start
//
// A backend needs: [New] with its options, and [CloseWith] to close the
// store with the Engine; the command methods (each takes [ExecOption]s:
// [WithIdempotencyKey], [WithCorrelationID], [WithReason]); the reads;
// [Result]; [Engine.Watch] or, to push each user their own notifications,
// [Engine.NewRouter]; and [ErrorCode] / [HTTPStatus] / [ErrorBodyOf] to
// answer a client. From package aggregate it needs the inputs
// (aggregate.Participant, aggregate.Preset, aggregate.Settings) and the
// error sentinels; from eventstore a store (eventstore.NewMemory, or
// natsstore.OpenEmbedded / natsstore.Connect for JetStream). Everything
// else (aggregate.Decide and Evolve, the events, the projections) is the
// core that replay, audits and tests use.
//
// # Snapshots
//
// When the store keeps snapshots (implements eventstore.Snapshotter, as
// the memory and JetStream stores do), the Engine writes each meeting's
// state (aggregate.State.MarshalBinary) every [WithSnapshotEvery] events
// (default 1,000), in the background, and loads a meeting it does not hold
// from its latest snapshot and the events after it. A snapshot is never
// trusted over the log: unless the log's event at the snapshot's version
// has the hash the snapshot names, it is discarded and the meeting folded
// from its first event. So a cold load reads at most about 1,000 events,
// however long the meeting.
//
// # Policies and time
//
// Each meeting can turn on policies with [Engine.Configure] (hosts only):
// a stage capacity with a seat waitlist and seat offers, expiring
// invitations, speaking slots, a cooldown after a denial, and a reconnect
// grace for [Engine.Disconnect]ed participants; hosts can also ban users
// from the stage ([Engine.BanFromStage], [Engine.LiftBan]). All are off by
// default. Package aggregate documents the rules; docs/policies.md walks
// through them.
//
// Every command and read observes deadlines at the engine clock's now:
// Status after an invitation's deadline already says OffStage. Lapses are
// also recorded in the log, as Lapsed events: [Engine.Tick] records every
// lapse due, a command decided while lapses are due appends them with its
// own event, and the Engine schedules a tick for each meeting it holds at
// that meeting's next deadline ([WithAutoTick], on by default; Close stops
// it). Ticks are decided on caught-up state and appended with the version
// guard, so several Engines on one store record each lapse once.
//
// The one failed command that appends an event is a Join on a full stage:
// it records SeatWaitlisted and returns an error wrapping
// aggregate.ErrStageFull, with Result.Version and Result.Events describing
// the append.
//
// # Errors
//
// Rejections wrap one of aggregate.ErrPermissionDenied,
// aggregate.ErrInvalidState, aggregate.ErrNotParticipant,
// aggregate.ErrInvalidCommand, aggregate.ErrStageFull,
// aggregate.ErrCooldown, aggregate.ErrKeyReused, aggregate.ErrNoMeeting
// (a meeting with no events), aggregate.ErrBackstage,
// aggregate.ErrStageEnded or aggregate.ErrRequestsClosed; errors.As with *aggregate.Error gives the
// command, the user and the reason. Conflicts that outlast the retries wrap
// eventstore.ErrConflict; damaged history wraps eventstore.ErrCorrupt.
// Every failure that is not a rejection says what it left in the store:
// errors.Is with [ErrNotStored] (retry as is) or [ErrOutcomeUnknown]
// (retry with the same idempotency key), and [ErrUnavailable] when no
// server or leader answered. docs/errors.md has the codes and HTTP
// statuses.
package stage
