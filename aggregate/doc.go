// Package aggregate is the pure core of the stage: the rules of
// stage-rules.md and the meeting policies, as two functions over a meeting's
// [State].
//
//   - [Decide](state, command, now) checks a command against the rules at
//     time now and returns the events it produces, or an [*Error] wrapping
//     one of the sentinel errors. It only reads the state.
//   - [Evolve](state, event) applies one stored event to the state, in
//     place. It never fails: the log is the truth.
//
// Nothing here does I/O, reads a clock, draws random numbers or logs. Time
// comes in as the now argument of Decide, and is stored in each event's Time;
// ids come in with the command. The same inputs always give the same
// decision, and folding the same events always gives the same state.
//
// # What a backend uses here
//
// A backend that runs the stage through a stage.Engine needs only the
// inputs and answers of its calls: [Participant] and [Permissions] (with
// the [Preset]s) for AddParticipant, [Settings] for Configure, [Status],
// and the errors: the sentinels (ErrPermissionDenied, ErrNotParticipant,
// ErrNoMeeting, ...), [*Error] and [Rejection]. [Member] is a participant
// as the [State] holds them (status, timestamps), and the roster of
// package projections (projections.RosterEntry) is the read model shown to
// clients. Decide, Evolve, the command types and State are the pure core:
// replay, the property tests and a custom engine use them.
//
// # The caller's loop
//
// Like raft's Node, the package hands its work to the caller. For one
// command on one meeting (this is what stage.Engine does):
//
//  1. Hold the meeting's state s, folded with Evolve from its stored events
//     (version s.Version(), last hash s.LastHash()).
//  2. Take now from your clock, never earlier than s.LastTime().
//  3. d, err := Decide(s, cmd, now). On err, return it: nothing is stored.
//     On d.Duplicate, the command was applied before (its id is in the
//     recent window): report the events at versions d.First..d.Last.
//  4. Give each of d.Events a fresh id, Seal it to the previous hash (the
//     first to s.LastHash()), and append them all atomically, expecting
//     version s.Version(). On a version conflict, catch s up from the store
//     and go to 2.
//  5. Evolve(s, e) for each appended event, in order.
//  6. Return d.Err (nil, or the ErrStageFull of a Join that was waitlisted:
//     see below) and d.Rejected (the skipped targets of a list command).
//
// For reads, use [At](s, now) rather than s: it applies the lapses due by
// now that the log has not recorded yet, without changing s. And arrange to
// decide a [Tick] at [NextDeadline](s), so that the log records each lapse
// close to when it happens.
//
// To avoid folding a long log from its first event, keep snapshots:
// [State.MarshalBinary] encodes the whole state, [UnmarshalState] restores
// it exactly. A snapshot is a cache, not history: use one only if the
// log's event at its Version has its LastHash, then Evolve the events after
// it.
//
// # One command, one event
//
// Every accepted command yields one event: a list command (grant, deny,
// kick) names all its users in one event, a participant leaving is one
// ParticipantLeft whatever their status, a Tick records all its lapses in one
// Lapsed event. The only decision with two events is a command decided
// while lapses are due and unrecorded: see "Time" below.
//
// # Policies
//
// A meeting's [Settings] (set by a host with [Configure], one
// SettingsChanged event) turn on, each independently, with zero meaning
// off:
//
//   - MaxOnStage: at most that many participants OnStage. A Join on a full
//     stage fails with ErrStageFull and puts the joiner (accepted, or
//     OffStage with Allowed access, who becomes accepted) at the end of the
//     seat waitlist. Every free seat is offered to the head of the waitlist:
//     the users holding offers are the first min(free seats, waitlist
//     length) of it, their Join succeeds, anyone else's fails ErrStageFull.
//     Raising MaxOnStage offers the new seats; lowering it below the number
//     on stage fails ErrInvalidState; setting it to 0 dissolves the
//     waitlist (its users stay accepted).
//   - SeatOfferTTL: an offer unused for that long lapses: the user leaves
//     the waitlist, OffStage, and the seat passes to the next.
//   - InvitationTTL: an AcceptedToJoinStage status that old lapses to
//     OffStage. While on the waitlist it does not lapse (the offer does).
//   - SpeakingSlot: an OnStage status that old lapses to OffStage; the seat
//     frees.
//   - RequestCooldown: RequestAccess within that long of the user's last
//     denial fails with ErrCooldown; [Error.Until] says when they may ask
//     again. Hosts may still invite them.
//   - ReconnectGrace: a [Disconnect]ed participant keeps their status,
//     queue position and seat for that long; [Reconnect] within it restores
//     everything; after it they leave the meeting as with
//     RemoveParticipant. With no grace, Disconnect removes them at once
//     (ParticipantLeft with reason "Disconnected").
//
// Stage bans need no setting: [BanFromStage] (a host; Until zero means until
// lifted) moves the user OffStage and out of the request queue and the
// waitlist, and until the ban ends they cannot request, be invited or join
// (ErrPermissionDenied, with Error.Until). [LiftBan] ends a ban early. Bans
// and denials are kept per user, not per membership: leaving and re-entering
// the meeting does not clear them.
//
// Deadlines are measured from the state and the settings in force: an
// invitation's from when the status began (Member.Since), an offer's from
// when it was made, a grace's from the disconnection. Changing a setting
// changes the deadlines already running. A deadline is reached when now >=
// deadline: at exactly the deadline the status has lapsed.
//
// # Stage controls
//
// Off by default, each one event (docs/stage-controls.md has the tables):
//
//   - Phases ([State.Phase]): a stage is live, or backstage while its
//     settings say StartBackstage and no host has started or ended it
//     (a request that would queue fails ErrBackstage), or ended.
//     [StartStage] (StageStarted) takes it live from backstage or ended;
//     [EndStage] (StageEnded) moves everyone on stage, accepted or
//     requested OffStage in one event, and until a new start RequestAccess,
//     Join, GrantAccess and BringOnStage fail ErrStageEnded.
//   - Co-hosts ([Member.CoHost]): [PromoteCoHost] and [DemoteCoHost] by a
//     host (CoHostPromoted, CoHostDemoted). A co-host lists, grants, denies
//     and kicks like a host, but not a host or another co-host
//     (ErrPermissionDenied for that target), and has none of the host's
//     controls: Configure, the phases, the requests switch, co-hosts,
//     bans, BringOnStage. The role ends with the membership.
//   - The requests switch: [CloseRequests] (RequestsClosed; with
//     DenyPending every pending request is denied in the same event) and
//     [OpenRequests]. While closed, a request that would queue fails
//     ErrRequestsClosed; pending requests stay.
//   - Invitations: AccessGranted names the invited (granted with no
//     request) in Invited; [Member.Invited]; [DeclineInvitation]
//     (InvitationDeclined) declines an invitation or approval explicitly.
//   - RequestTTL: a pending request that old lapses to OffStage (a
//     RequestExpired lapse).
//   - [BringOnStage] (BroughtOnStage): a host moves a user straight
//     OnStage, only with AllowBringOnStage, never a NotAllowed or banned
//     user, never past MaxOnStage (ErrStageFull, recording nothing).
//
// # Time, lapses and ticks
//
// Deadlines are compared with the now given to Decide; Evolve never looks at
// a clock. A deadline that passes changes the state only through an event:
//
//   - Deciding a [Tick] at now records every lapse due by now ([DueLapses]),
//     in deadline order, as one Lapsed event (none when nothing is due).
//     Each lapse names the user, what lapsed (InvitationExpired, SlotEnded,
//     SeatOfferLapsed, GraceExpired, BanExpired, RequestExpired), when it began, its
//     deadline, and the setting and value in force.
//   - Evolve applies each lapse at its Deadline, not at the event's Time: a
//     seat freed by a slot that ended at 14:05 is offered from 14:05, with
//     its own deadline 14:05 + SeatOfferTTL, however late the tick is
//     recorded. So the log does not depend on when ticks run, and a lapse
//     that frees a seat can be followed, in the same Lapsed event, by the
//     lapse of the offer that seat produced.
//   - Any other command decided while lapses are due is decided on the state
//     those lapses leave (the design choice of this package): the decision
//     holds a Lapsed event first, then the command's event, to be appended
//     together. A rejected command records nothing, lapses included; they
//     stay due for the next tick or command.
//
// The pure helper [At](s, now) gives the state with the due lapses applied
// and the same version, for reads: a status read after an invitation's
// deadline says OffStage before any tick has recorded it.
//
// # The one rejection that records an event
//
// "A rejected command appends nothing" has one exception, by design: a Join
// on a full stage (not already waitlisted) appends SeatWaitlisted and fails
// with ErrStageFull, returned in [Decision.Err] next to the event. A retry of
// that command (same id) reports the same error ([ErrorOf]).
package aggregate
