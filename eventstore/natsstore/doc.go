// Package natsstore is the event store on NATS JetStream: an
// [eventstore.Store] that keeps every stage event as a message in one
// stream, and an embedded nats-server so that the same code runs in-process
// by default, on an external server, or on a cluster.
//
// # Layout in JetStream
//
// One stream (default "STAGE") holds the subjects "<prefix>.>" (default
// prefix "stage.events"); meeting m's events are the messages of subject
// "<prefix>.<SubjectToken(m)>", in version order, and an event's Seq is
// its stream sequence. A meeting id is any id events.ValidateID accepts;
// [SubjectToken] escapes it onto exactly one literal subject token,
// reversibly ([MeetingOfToken]), and leaves every id that was valid before
// ids could hold '.', '*', '>' and white space as it is, so old streams
// keep their subjects (see ids.go for the scheme and why no two ids share
// a subject). The stream denies deletes and purges: the audit log is
// append-only.
//
// # Appends
//
// Append publishes one event with one guarded publish: the header
// Nats-Expected-Last-Subject-Sequence carries the stream sequence of the
// meeting's event at the expected version (0 for a new meeting), so the
// server stores it only if nobody appended to the meeting meanwhile. A
// failed guard (JetStream API error code 10071, or 10164 on replicated
// streams; never matched by text) is eventstore.ErrConflict. Several
// events go in one atomic batch (AllowAtomicPublish, nats-server 2.12+)
// guarded the same way on its first message: all are stored or none. A
// batch costs ten to a hundred times a single publish (the server stages
// it in a temporary store), so the engine makes one command one event. The store remembers each meeting's last known
// (version, sequence); when it does not know the sequence of the expected
// version it asks the stream leader for the meeting's last message.
//
// Messages carry no Nats-Msg-Id (atomic batches refuse it, and the
// server's dedupe window is finite): a retried command is recognised by the
// command id every event carries (see the stage Engine).
//
// # Reads
//
// Load and ReadAll read up to the last sequence that the stream leader
// reports when the read begins, so a replica that lags cannot hide an
// event: a short read with batched direct gets (AllowDirect), a long one
// (a whole stream, a meeting of thousands of events) with an ordered
// consumer whose messages are decoded and checked on every core
// ([ReadOrdered]), finishing with direct gets if the consumer stops short
// of that sequence. Subscribe uses an ordered
// consumer, which resumes after the last sequence it delivered when the
// connection or the server comes back: no gap, no duplicate. Every message
// is decoded and its hash verified; Load also checks the meeting's version
// and hash chain, and ReadAll the stream's sequences (a stream that denies
// deletes has no holes) and each meeting's chain. A message that fails is
// reported as an *eventstore.CorruptError naming its stream sequence, never
// served.
//
// # Snapshots
//
// The Store is an eventstore.Snapshotter: each meeting's latest snapshot is
// the value of its key (the meeting id, or "x." and the id in base64 where
// the id is not a valid key) in the KV bucket "<stream>_SNAPSHOTS", created
// by New. A snapshot records the version, hash and stream sequence of the
// event it covers; LoadSnapshot checks that the stream holds that event
// there, so that the next Load from that version starts at it rather than
// at the meeting's first event. A state is compressed (zstd); one still
// too large for one message is an object of its own in the object store
// bucket "<stream>_SNAPSHOTS_OBJ", which the key names with its length and
// SHA-256 (see SaveSnapshot). Snapshots are a cache: the engine checks
// them against the log, and deleting the buckets loses nothing.
//
// # Lost history
//
// A server that finds damaged files when it starts drops what it cannot
// read, and the stream silently shrinks or starts late, though it denies
// deletes. The store keeps high-water marks outside the stream, in the KV
// bucket "<stream>_MARKS" ([MarksBucket]): the last sequence seen and each
// meeting's last event (version, sequence, hash), written in the background
// at most every [WithMarkInterval] and on Close. [New] checks the stream's
// state against them ([CheckHistory]), and a Store checks a meeting's mark
// when it first reads the meeting. A meeting that lost events is logged and
// refused by Append with an *eventstore.HistoryLostError (ErrHistoryLost);
// reads serve what remains. [Store.AcceptLoss] is the operator's audited
// way out; [Store.Recoveries] lists its records.
//
// # The embedded default
//
// [StartServer] runs nats-server in this process with JetStream and file
// storage in a directory; [Server.Connect] connects through memory, with no
// listening port unless [WithListen] asks for one. The embedded server
// syncs every write to disk before acknowledging it (SyncAlways):
// nats-server's default flushes only every two minutes, and an analysis of
// nats-server 2.12.1 found acknowledged writes lost that way after a
// machine crash. [WithLazySync] trades that away for speed, for benchmarks.
// [OpenEmbedded] is the whole default in one call.
//
// One server at a time holds a data directory: StartServer takes an
// exclusive flock on the directory's [LockFileName] and records there which
// process holds it, so that a second StartServer or OpenEmbedded on the
// directory, in this process or another, is refused with a
// [*DirLockedError] naming the holder, instead of losing one side's
// acknowledged writes. [Server.Shutdown] lets the directory go, and so
// does the holder's death, however it dies. Other processes reach a live
// store through its server's URL ([WithListen]), not through its
// directory. Where Go has no flock (Windows, Solaris, AIX) no lock is
// taken.
//
// # An external server or cluster
//
// Connect with nats.go and its own options (URLs, credentials, TLS), and
// pass the connection to [New]; set nats-server's "sync_interval: always"
// in its jetstream block for the same durability as the embedded default,
// and use [WithReplicas](3) on a cluster.
package natsstore
