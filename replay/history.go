package replay

import (
	"context"
	"fmt"

	"github.com/productdb/stage/eventstore/natsstore"
)

// HistoryLost: events the log once held are gone: the store's high-water
// marks (kept outside the stream) name events the stream no longer has, or
// an operator accepted such a loss on the record. See [WithHistory].
const HistoryLost FindingKind = "history-lost"

// HistorySource is implemented by sources that keep high-water marks beside
// the log (a JetStream stream written by natsstore, a data directory of the
// embedded default).
type HistorySource interface {
	// History compares the log with its marks (natsstore.CheckHistory) and
	// lists the losses operators accepted (natsstore.ReadRecoveries).
	History(ctx context.Context) (*natsstore.HistoryReport, []natsstore.Recovery, error)
}

var _ HistorySource = (*jsSource)(nil)

// History implements [HistorySource].
func (s *jsSource) History(ctx context.Context) (*natsstore.HistoryReport, []natsstore.Recovery, error) {
	rep, err := natsstore.CheckHistory(ctx, s.js, s.stream, s.prefix)
	if err != nil {
		return nil, nil, fmt.Errorf("replay: stream %s: %w", s.stream, err)
	}
	recs, err := natsstore.ReadRecoveries(ctx, s.js, s.stream)
	if err != nil {
		return nil, nil, fmt.Errorf("replay: stream %s: %w", s.stream, err)
	}
	return rep, recs, nil
}

// WithHistory makes [Verify] report, as [HistoryLost] findings, the losses
// a history check found (h, from [HistorySource.History]; nil for none)
// and the losses operators accepted (recs): the log is not complete, even
// where what remains verifies. With meetingID not empty, only that
// meeting's losses (and the stream's) are reported.
func WithHistory(h *natsstore.HistoryReport, recs []natsstore.Recovery, meetingID string) VerifyOption {
	return func(v *verifier) {
		var fs []Finding
		if h != nil {
			if l := h.StreamLoss; l != nil {
				fs = append(fs, Finding{Kind: HistoryLost, Err: l, Reason: l.Error()})
			}
			for _, l := range h.Meetings {
				if meetingID != "" && l.MeetingID != meetingID {
					continue
				}
				fs = append(fs, Finding{MeetingID: l.MeetingID, Version: l.HaveVersion + 1, Kind: HistoryLost, Err: l, Reason: l.Error()})
			}
		}
		for _, r := range recs {
			if meetingID != "" && r.MeetingID != "" && r.MeetingID != meetingID {
				continue
			}
			what := fmt.Sprintf("stream sequences %d-%d", r.HaveSeq+1, r.SeenSeq)
			if r.MeetingID != "" {
				what = fmt.Sprintf("versions %d-%d (head hash %s)", r.HaveVersion+1, r.SeenVersion, short(r.SeenHash))
			}
			fs = append(fs, Finding{MeetingID: r.MeetingID, Version: r.HaveVersion + 1, Kind: HistoryLost,
				Reason: fmt.Sprintf("%s were lost; %s accepted the loss at %s (record %s): %q", what, r.Operator, r.Time.Format(timeFmt), r.Key, r.Reason)})
		}
		v.history = fs
	}
}
