package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/projections"
	"github.com/productdb/stage/service/auth"
)

// hub holds one stage.Router per meeting with open streams.
type hub struct {
	mu      sync.Mutex
	routers map[string]*routerEntry
	n       int // open streams
	closed  bool
	done    chan struct{} // closed by shutdown
	wg      sync.WaitGroup
}

type routerEntry struct {
	r       *stage.Router
	streams int

	// The JSON of the last broadcast notifications, written once for all
	// the meeting's streams.
	cacheMu sync.Mutex
	cache   [4]cachedNote
	next    int
}

type cachedNote struct {
	id   string
	data []byte
}

// marshal returns n's JSON; a broadcast notification's is shared by the
// meeting's streams (do not modify it). A live notification is not
// cached: its id is the id of the last notification routed (a roster
// update's, say), and it must not be answered with that one's JSON.
func (e *routerEntry) marshal(n projections.Notification) ([]byte, error) {
	if n.Recipient != projections.Everyone || n.Type == projections.Live {
		return n.MarshalJSON()
	}
	e.cacheMu.Lock()
	defer e.cacheMu.Unlock()
	for _, c := range e.cache {
		if c.id == n.ID && c.data != nil {
			return c.data, nil
		}
	}
	data, err := n.MarshalJSON()
	if err != nil {
		return nil, err
	}
	e.cache[e.next] = cachedNote{id: n.ID, data: data}
	e.next = (e.next + 1) % len(e.cache)
	return data, nil
}

func (hb *hub) init() {
	hb.routers = map[string]*routerEntry{}
	hb.done = make(chan struct{})
}

func (hb *hub) isClosed() bool {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	return hb.closed
}

func (hb *hub) streams() int {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	return hb.n
}

// subscribers returns the meeting's router's subscriber count, -1 without one.
func (hb *hub) subscribers(meeting string) int {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if e := hb.routers[meeting]; e != nil {
		return e.r.Subscribers()
	}
	return -1
}

// acquire returns the meeting's router, creating it on first use (or when
// the previous one ended), and counts a stream on it.
func (hb *hub) acquire(eng *stage.Engine, meeting string, buffer int) (*routerEntry, error) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if hb.closed {
		return nil, stage.ErrClosed
	}
	e := hb.routers[meeting]
	if e != nil {
		select {
		case <-e.r.Done(): // ended (a store error): start a new one
			delete(hb.routers, meeting)
			e = nil
		default:
		}
	}
	if e == nil {
		r, err := eng.NewRouter(meeting, stage.WithSubscriberBuffer(buffer))
		if err != nil {
			return nil, err
		}
		e = &routerEntry{r: r}
		hb.routers[meeting] = e
	}
	e.streams++
	hb.n++
	hb.wg.Add(1)
	return e, nil
}

// release uncounts a stream; the router of the meeting's last stream closes.
func (hb *hub) release(meeting string, e *routerEntry) {
	hb.mu.Lock()
	e.streams--
	hb.n--
	last := e.streams == 0
	if last && hb.routers[meeting] == e {
		delete(hb.routers, meeting)
	}
	hb.mu.Unlock()
	if last {
		_ = e.r.Close()
	}
	hb.wg.Done()
}

func (hb *hub) shutdown(ctx context.Context) error {
	hb.mu.Lock()
	if !hb.closed {
		hb.closed = true
		close(hb.done)
	}
	hb.mu.Unlock()
	waited := make(chan struct{})
	go func() { hb.wg.Wait(); close(waited) }()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serveEvents streams the user's notifications and the broadcast ones as
// server-sent events.
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	meeting := r.PathValue("meeting")
	ctx := r.Context()
	// Only a participant of an existing meeting gets a stream (404 NoMeeting
	// or NotParticipant otherwise).
	if _, err := h.eng.Status(ctx, meeting, id.UserID); err != nil {
		writeProblem(w, r, ProblemOf(err))
		return
	}
	rc := http.NewResponseController(w)
	e, err := h.hub.acquire(h.eng, meeting, h.cfg.buffer)
	if err != nil {
		writeProblem(w, r, ProblemOf(err))
		return
	}
	defer h.hub.release(meeting, e)
	lastID := r.Header.Get("Last-Event-ID")
	sub, err := e.r.Subscribe(ctx, id.UserID, lastID)
	if err != nil {
		writeProblem(w, r, ProblemOf(err))
		return
	}
	defer sub.Close()
	// Each write gets its own deadline (a stream outlives a server's
	// WriteTimeout; a client that stops reading is ended, not waited for).
	send := func(b []byte, flush bool) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.writeTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return !flush || rc.Flush() == nil
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if !send([]byte(": stream "+meeting+"\n\n"), true) {
		return
	}
	beat := time.NewTicker(h.cfg.heartbeat)
	defer beat.Stop()
	var buf []byte
	for {
		select {
		case n, ok := <-sub.C():
			if !ok {
				if err := sub.Err(); err != nil && ctx.Err() == nil {
					if errors.Is(err, stage.ErrRouterClosed) && h.hub.isClosed() {
						err = stage.ErrClosed
					}
					if !errors.Is(err, stage.ErrSlowConsumer) && !errors.Is(err, stage.ErrClosed) && !errors.Is(err, stage.ErrRouterClosed) {
						h.cfg.logger.Warn("httpapi: event stream ended", "meeting", meeting, "user", id.UserID, "err", err)
					}
					send(errorEvent(err), true)
				}
				return
			}
			if h.beforeWrite != nil {
				h.beforeWrite()
			}
			if n.Type == projections.Live && lastID != "" {
				n = liveNotBehind(n, lastID)
			}
			data, err := e.marshal(n)
			if err != nil {
				h.cfg.logger.Error("httpapi: notification does not marshal", "meeting", meeting, "id", n.ID, "err", err)
				return
			}
			buf = append(buf[:0], "id: "...)
			buf = append(buf, n.ID...)
			buf = append(buf, "\nevent: "...)
			buf = append(buf, n.Type...)
			buf = append(buf, "\ndata: "...)
			buf = append(buf, data...)
			buf = append(buf, "\n\n"...)
			if !send(buf, len(sub.C()) == 0) { // flush once the burst is written
				return
			}
		case <-beat.C:
			if !send([]byte(": heartbeat\n\n"), true) {
				return
			}
		case <-h.hub.done:
			send(errorEvent(stage.ErrClosed), true)
			return
		case <-ctx.Done():
			return
		}
	}
}

// errorEvent is the "error" event that ends a stream, with err's problem.
func errorEvent(err error) []byte {
	data, _ := json.Marshal(ProblemOf(err))
	return []byte("event: error\ndata: " + string(data) + "\n\n")
}

// liveNotBehind returns the live notification n, of a stream resumed after
// lastID, with lastID as its id when lastID is past n's: the router starts
// a client that is ahead of it (it came from an instance whose router was
// further on) at the router's position, skipping up to lastID, and an
// EventSource that took that older id would resume from it next time and
// get again what it already had.
func liveNotBehind(n projections.Notification, lastID string) projections.Notification {
	after, err1 := projections.ParseNotificationID(lastID)
	pos, err2 := projections.ParseNotificationID(n.ID)
	if err1 != nil || err2 != nil {
		return n
	}
	// An id of a whole version (a negative Index) comes after every
	// notification of that version.
	past := after.Version > pos.Version ||
		after.Version == pos.Version && pos.Index >= 0 && (after.Index < 0 || after.Index > pos.Index)
	if past {
		n.ID, n.Version = lastID, after.Version
	}
	return n
}
