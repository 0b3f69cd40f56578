package natsstore

// Tests of the meeting id escaping (ids.go). FuzzSubjectToken is found and
// run briefly by .ci/fuzz like every func Fuzz... of the module; its seed
// corpus is in testdata/fuzz/FuzzSubjectToken/. Run it longer with
//
//	go test ./eventstore/natsstore -run '^$' -fuzz '^FuzzSubjectToken$' -fuzztime 1m

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/productdb/stage/events"
)

// oldValidID is events.ValidateID as it was before ids could hold '.',
// '*', '>' and white space: the ids of the meetings of old streams.
func oldValidID(id string) bool {
	if id == "" || len(id) > events.MaxIDLen {
		return false
	}
	for _, r := range id {
		if r == utf8.RuneError || r == '.' || r == '*' || r == '>' || unicode.IsControl(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// oldSnapshotKey is the snapshot, marks, object and checkpoint key of a
// meeting as it was before (the function snapshotKey).
func oldSnapshotKey(meetingID string) string {
	for i := 0; i < len(meetingID); i++ {
		c := meetingID[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '=' || c == '/') {
			return "x." + base64.RawURLEncoding.EncodeToString([]byte(meetingID))
		}
	}
	return meetingID
}

// validKVKey is the key syntax of nats.go's KV.
var validKVKey = regexp.MustCompile(`^[-/_=\.a-zA-Z0-9]+$`)

// checkToken checks a token is one literal subject token, as nats-server
// checks a subject's tokens (and as a publish subject: no wildcard).
func checkToken(t *testing.T, id, tok string) {
	t.Helper()
	switch {
	case tok == "", tok == "*", tok == ">":
		t.Fatalf("SubjectToken(%q) = %q: empty or a wildcard", id, tok)
	case strings.ContainsAny(tok, ". \t\n\r\f\x00"):
		t.Fatalf("SubjectToken(%q) = %q: holds a separator, white space or NUL", id, tok)
	case !utf8.ValidString(tok) || strings.ContainsRune(tok, utf8.RuneError):
		t.Fatalf("SubjectToken(%q) = %q: not valid UTF-8 (or U+FFFD, which nats-server refuses)", id, tok)
	}
	for _, r := range tok {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			t.Fatalf("SubjectToken(%q) = %q: holds %U", id, tok, r)
		}
	}
}

// checkID checks every property of the escaping for one valid id.
func checkID(t *testing.T, id string) {
	t.Helper()
	tok := SubjectToken(id)
	checkToken(t, id, tok)
	if back, ok := MeetingOfToken(tok); !ok || back != id {
		t.Fatalf("MeetingOfToken(SubjectToken(%q) = %q) = %q, %v", id, tok, back, ok)
	}
	if back, ok := MeetingOfSubject("stage.events", "stage.events."+tok); !ok || back != id {
		t.Fatalf("MeetingOfSubject(stage.events.%s) = %q, %v; want %q", tok, back, ok, id)
	}
	if old := oldValidID(id); old != (tok == id) {
		t.Fatalf("SubjectToken(%q) = %q; valid before: %v (an old id must be its own token, a new one must not)", id, tok, old)
	}
	if old := oldValidID(id); old == strings.Contains(tok, "*") {
		t.Fatalf("SubjectToken(%q) = %q: escaped iff not valid before, got valid before %v", id, tok, old)
	}
	key := meetingKey(id)
	if key != oldSnapshotKey(id) {
		t.Fatalf("meetingKey(%q) = %q, was %q", id, key, oldSnapshotKey(id))
	}
	if !validKVKey.MatchString(key) || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") {
		t.Fatalf("meetingKey(%q) = %q: not a valid KV key", id, key)
	}
	if back, ok := meetingOfKey(key); !ok || back != id {
		t.Fatalf("meetingOfKey(meetingKey(%q) = %q) = %q, %v", id, key, back, ok)
	}
}

func TestSubjectToken_Examples(t *testing.T) {
	for id, want := range map[string]string{
		// Ids valid before are their own token: old streams keep reading.
		"webinar-42": "webinar-42", "Zoë": "Zoë", "日本": "日本", "$sys": "$sys",
		"user_7:team/blue": "user_7:team/blue", "%2E": "%2E", "a%b": "a%b",
		// The rest: '.', '*', '>', white space and U+FFFD escaped.
		"bob@example.com": "bob@example*2Ecom",
		"user.123":        "user*2E123",
		"a b":             "a*20b",
		"ünï.cödé":        "ünï*2Ecödé",
		">":               "*3E",
		"*":               "*2A",
		".":               "*2E",
		"a*2Eb":           "a*2A2Eb",
		"a.*.>":           "a*2E*2A*2E*3E",
		"Ana\u00a0Lima":   "Ana*C2*A0Lima",
		"\ufffd":          "*EF*BF*BD",
	} {
		if got := SubjectToken(id); got != want {
			t.Errorf("SubjectToken(%q) = %q, want %q", id, got, want)
		}
		checkID(t, id)
	}
}

func TestMeetingOfToken_RefusesNonCanonical(t *testing.T) {
	for _, tok := range []string{
		"", "a*", "a*2", "a*2e", "*zz", "*41", // not an escape, lower case, an escape of 'A' (needs none)
		"a.b", "a b", "*", ">", "\ufffd", "a\xffb", "a\tb", // bytes an id's token never holds
		"*2E*", "a*2Eb*", // a trailing '*'
		"a*00b", "*09", "*0A", // an escape of a control character: no id holds one
	} {
		if id, ok := MeetingOfToken(tok); ok {
			t.Errorf("MeetingOfToken(%q) = %q, true; want no meeting", tok, id)
		}
	}
	for _, subj := range []string{"stage.events", "stage.eventsx.a", "other.a", "stage.events.a.b", "stage.events."} {
		if id, ok := MeetingOfSubject("stage.events", subj); ok {
			t.Errorf("MeetingOfSubject(%q) = %q, true; want no meeting", subj, id)
		}
	}
}

// TestSubjectToken_Injective checks every pair of a set of ids built to
// collide: each id, its token and its key read as ids, with every
// character that is escaped in any position.
func TestSubjectToken_Injective(t *testing.T) {
	base := []string{"a", "a.b", "a*2Eb", "a*b", "*", ">", ".", " ", "x.YQ", "YQ", "\ufffd", "*EF*BF*BD", "a\u2028", "a*E2*80*A8"}
	var ids []string
	for _, id := range base {
		ids = append(ids, id, SubjectToken(id), meetingKey(id), SubjectToken(SubjectToken(id)))
	}
	for _, c := range " .*>%\u00a0\u3000\ufffdé" {
		ids = append(ids, string(c), "a"+string(c), string(c)+"a", "a"+string(c)+"b")
	}
	tokens, keys := map[string]string{}, map[string]string{}
	for _, id := range ids {
		if events.ValidateID(id) != nil {
			continue
		}
		checkID(t, id)
		tok, key := SubjectToken(id), meetingKey(id)
		if other, ok := tokens[tok]; ok && other != id {
			t.Fatalf("ids %q and %q share the token %q", id, other, tok)
		}
		if other, ok := keys[key]; ok && other != id {
			t.Fatalf("ids %q and %q share the key %q", id, other, key)
		}
		tokens[tok], keys[key] = id, id
	}
}

// FuzzSubjectToken: for any two valid ids, each token is one literal
// subject token that decodes back to its id, an id valid before is its own
// token (and its KV key the one it had), and two ids never share a token
// or a key. Any string MeetingOfToken accepts is the token of what it
// returns.
func FuzzSubjectToken(f *testing.F) {
	for _, s := range [][2]string{
		{"bob@example.com", "bob@example*2Ecom"}, {"user.123", "user*2E123"}, {"a b", "a*20b"}, {"ünï.cödé", ">"},
		{"*", "*2A"}, {"a.b", "a*2Eb"}, {"webinar-42", "x.d2ViaW5hci00Mg"}, {"\ufffd", "\xff"}, {"a\u00a0", "a*C2*A0"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, s := range []string{a, b} {
			if id, ok := MeetingOfToken(s); ok && SubjectToken(id) != s {
				t.Fatalf("MeetingOfToken(%q) = %q, whose token is %q", s, id, SubjectToken(id))
			}
			if id, ok := meetingOfKey(s); ok && meetingKey(id) != s {
				t.Fatalf("meetingOfKey(%q) = %q, whose key is %q", s, id, meetingKey(id))
			}
		}
		va, vb := events.ValidateID(a) == nil, events.ValidateID(b) == nil
		if va {
			checkID(t, a)
		}
		if vb {
			checkID(t, b)
		}
		if va && vb && a != b {
			if SubjectToken(a) == SubjectToken(b) {
				t.Fatalf("ids %q and %q share the token %q", a, b, SubjectToken(a))
			}
			if meetingKey(a) == meetingKey(b) {
				t.Fatalf("ids %q and %q share the key %q", a, b, meetingKey(a))
			}
		}
	})
}
