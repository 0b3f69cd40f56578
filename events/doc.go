// Package events defines the stage's events: the [Envelope] every event is
// stored in, one payload type per event, the JSON wire codec that is the audit
// format, and the hash chain that makes a stored log tamper-evident.
//
// A backend rarely imports it: the engine writes events, and replay and
// projections read them. It needs [Envelope] when it reads the log (a
// stage.Result's Events, the audit export) and [ValidateID] to check ids
// before it calls the engine.
//
// # Wire format (schema 1)
//
// One event is one JSON object (one line in an export file):
//
//		{"schema":1,"id":"0192…","meeting":"webinar-42","version":7,
//		 "type":"AccessGranted","time":"2026-11-29T14:03:07.5Z","actor":"alice",
//		 "command":"c-81…","correlation":"req-9","payload":{"users":["bob"]},
//		 "prev":"9f2c…","hash":"51aa…","seq":1207}
//
//	  - schema: the wire schema version, 1.
//	  - id: the event's UUID v7.
//	  - meeting, version: the meeting and the event's per-meeting version (1, 2, 3, …).
//	  - type: one of the Type constants; payload has that type's fields.
//	  - time: RFC 3339 with nanoseconds, UTC.
//	  - actor: the user who issued the command; absent for backend membership commands.
//	  - command: the command (idempotency) id; correlation: optional.
//	  - prev, hash: the hash chain, 64 hex digits each (see [Envelope.ComputeHash]).
//	  - seq: the global position in the store it was read from; not hashed.
//
// The policy events (schema 1 too; see aggregate's documentation):
// SettingsChanged {settings, previous}, SeatWaitlisted {position, status,
// maxOnStage}, StageBanned {user, until, status}, BanLifted {user},
// Disconnected {user, grace}, Reconnected {user}, and Lapsed {lapses: [{user,
// kind, since, deadline, setting, limit, status}]}, where kind is one of
// InvitationExpired, SlotEnded, SeatOfferLapsed, GraceExpired, BanExpired,
// RequestExpired and durations are Go duration strings ("1m30s"). A lapse
// takes effect at its deadline, not at the event's time. ParticipantLeft has
// an optional reason, "Disconnected" when a disconnect with no reconnect
// grace removed the user.
//
// The stage-control events (schema 1 too; see docs/stage-controls.md):
// StageStarted {from}, StageEnded {from, onStage, accepted, requests},
// RequestsClosed {denyPending, denied}, RequestsOpened {}, CoHostPromoted
// {user}, CoHostDemoted {user}, InvitationDeclined {invited}, BroughtOnStage
// {user, status}; AccessGranted has an optional invited list.
//
// Decoding is strict: unknown fields, unknown types, another schema or a
// payload of the wrong shape fail with [ErrMalformed], and so do a member
// name that is not exactly a field's (in case too), a name given twice in
// one object, and anything but white space after the event. The encoding
// is exactly what encoding/json writes for these fields (HTML-safe string
// escaping included): the codec is hand-written for speed, and tests hold it
// to encoding/json byte for byte.
//
// # Hash chain
//
// Every event's Hash covers its contents and the Hash of the meeting's
// previous event, so editing, deleting, inserting or reordering stored events
// breaks the chain. [Envelope.Verify] checks one event; a verifier walks a
// meeting and compares each PrevHash with the previous Hash.
package events
