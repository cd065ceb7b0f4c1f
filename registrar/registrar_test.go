package registrar

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var src = netip.MustParseAddrPort("198.51.100.7:40312")

// step is one REGISTER (or, with expire set, an Expire call) at t0+at.
type step struct {
	at       time.Duration
	expire   bool
	aor      string // default "alice"
	callID   string // default "c1"
	cseq     uint32
	contacts string // "uri[=expires] uri2 ..." ; "*" for the wildcard
	expires  int    // Expires header; 0 means absent unless zeroHdr
	zeroHdr  bool
	wantErr  error
	want     string // resulting bindings of the AOR: "uri=secondsLeft ..."
	events   string // "alice+ bob-"
}

func parseContacts(s string) (cs []Contact, wildcard bool) {
	for _, f := range strings.Fields(s) {
		if f == "*" {
			wildcard = true
			continue
		}
		c := Contact{URI: f, Expires: -1}
		if u, e, ok := strings.Cut(f, "="); ok {
			c.URI = u
			c.Expires, _ = strconv.Atoi(e)
		}
		cs = append(cs, c)
	}
	return cs, wildcard
}

func describe(bs []Binding, now time.Time) string {
	var parts []string
	for _, b := range bs {
		parts = append(parts, b.Contact+"="+strconv.Itoa(b.ExpiresIn(now)))
	}
	return strings.Join(parts, " ")
}

func describeEvents(evs []Event) string {
	var parts []string
	for _, e := range evs {
		s := e.AOR + "-"
		if e.Online {
			s = e.AOR + "+"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestRegister(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"register and refresh", []step{
			{cseq: 1, contacts: "sip:a@10.0.0.2", expires: 600, want: "sip:a@10.0.0.2=600", events: "alice+"},
			{at: time.Minute, cseq: 2, contacts: "sip:a@10.0.0.2", expires: 600, want: "sip:a@10.0.0.2=600"},
		}},
		{"default expiry", []step{
			{cseq: 1, contacts: "sip:a@h", want: "sip:a@h=600", events: "alice+"},
		}},
		{"contact param beats header", []step{
			{cseq: 1, contacts: "sip:a@h=120", expires: 600, want: "sip:a@h=120", events: "alice+"},
		}},
		{"capped at max", []step{
			{cseq: 1, contacts: "sip:a@h=86400", want: "sip:a@h=600", events: "alice+"},
		}},
		{"too brief", []step{
			{cseq: 1, contacts: "sip:a@h=30", wantErr: ErrIntervalTooBrief},
			{cseq: 2, contacts: "sip:a@h", expires: 59, wantErr: ErrIntervalTooBrief},
			{cseq: 3, contacts: "sip:a@h sip:b@h=10", wantErr: ErrIntervalTooBrief}, // all or nothing
			{cseq: 4, contacts: "sip:a@h=60", want: "sip:a@h=60", events: "alice+"},
		}},
		{"several contacts", []step{
			{cseq: 1, contacts: "sip:desk@h sip:soft@h=300", want: "sip:desk@h=600 sip:soft@h=300", events: "alice+"},
			{callID: "c2", cseq: 1, contacts: "sip:mobile@h=600", want: "sip:desk@h=600 sip:soft@h=300 sip:mobile@h=600"},
		}},
		{"query", []step{
			{cseq: 1, contacts: "sip:a@h", want: "sip:a@h=600", events: "alice+"},
			{at: time.Second, cseq: 2, want: "sip:a@h=599"},
		}},
		{"unregister one then the last", []step{
			{cseq: 1, contacts: "sip:a@h sip:b@h", want: "sip:a@h=600 sip:b@h=600", events: "alice+"},
			{cseq: 2, contacts: "sip:a@h=0", want: "sip:b@h=600"},
			{cseq: 3, contacts: "sip:b@h", zeroHdr: true, want: "", events: "alice-"},
			{cseq: 4, contacts: "sip:b@h=0", want: ""}, // nothing to remove: no event
		}},
		{"wildcard", []step{
			{cseq: 1, contacts: "sip:a@h sip:b@h", want: "sip:a@h=600 sip:b@h=600", events: "alice+"},
			{cseq: 2, contacts: "*", want: "sip:a@h=600 sip:b@h=600", wantErr: ErrInvalidWildcard},
			{cseq: 2, contacts: "* sip:a@h", zeroHdr: true, wantErr: ErrInvalidWildcard},
			{callID: "other", cseq: 1, contacts: "*", zeroHdr: true, want: "", events: "alice-"},
		}},
		{"cseq ordering", []step{
			{cseq: 5, contacts: "sip:a@h", want: "sip:a@h=600", events: "alice+"},
			{cseq: 5, contacts: "sip:a@h=0", wantErr: ErrOutOfOrder},
			{cseq: 4, contacts: "sip:a@h=0", wantErr: ErrOutOfOrder},
			{cseq: 4, contacts: "*", zeroHdr: true, wantErr: ErrOutOfOrder},
			{callID: "reboot", cseq: 1, contacts: "sip:a@h", expires: 300, want: "sip:a@h=300"}, // new Call-ID: any CSeq
			{callID: "reboot", cseq: 2, contacts: "sip:a@h=0", want: "", events: "alice-"},
		}},
		{"expiry", []step{
			{cseq: 1, contacts: "sip:a@h=60 sip:b@h=120", want: "sip:a@h=60 sip:b@h=120", events: "alice+"},
			{aor: "bob", cseq: 1, contacts: "sip:bob@h=90", want: "sip:bob@h=90", events: "bob+"},
			{at: 59 * time.Second, expire: true, want: "sip:a@h=1 sip:b@h=61"},
			{at: 60 * time.Second, expire: true, want: "sip:b@h=60"},
			{at: 90 * time.Second, expire: true, want: "sip:b@h=30", events: "bob-"},
			{at: 120 * time.Second, expire: true, want: "", events: "alice-"},
			{at: 121 * time.Second, expire: true, want: ""},
		}},
		{"lapsed binding replaced before Expire ran", []step{
			{cseq: 1, contacts: "sip:a@h=60", want: "sip:a@h=60", events: "alice+"},
			{at: 2 * time.Minute, cseq: 2, contacts: "sip:b@h=60", want: "sip:b@h=60"}, // still online: no event
		}},
		{"too many contacts", []step{
			{cseq: 1, contacts: "sip:x@h sip:1@h sip:2@h sip:3@h sip:4@h sip:5@h sip:6@h sip:7@h sip:8@h sip:9@h", want: "sip:x@h=600 sip:1@h=600 sip:2@h=600 sip:3@h=600 sip:4@h=600 sip:5@h=600 sip:6@h=600 sip:7@h=600 sip:8@h=600 sip:9@h=600", events: "alice+"},
			{cseq: 2, contacts: "sip:10@h", wantErr: ErrTooManyContacts},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Options{})
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				aor := s.aor
				if aor == "" {
					aor = "alice"
				}
				var evs []Event
				if s.expire {
					evs = r.Expire(now)
				} else {
					cs, wild := parseContacts(s.contacts)
					req := Request{AOR: aor, CallID: s.callID, CSeq: s.cseq, Contacts: cs, Wildcard: wild,
						Expires: -1, Source: src, Transport: "udp"}
					if req.CallID == "" {
						req.CallID = "c1"
					}
					if s.expires != 0 || s.zeroHdr {
						req.Expires = s.expires
					}
					got, e, err := r.Register(now, req)
					if !errors.Is(err, s.wantErr) || (err == nil) != (s.wantErr == nil) {
						t.Fatalf("step %d: error %v, want %v", i, err, s.wantErr)
					}
					if err == nil && describe(got, now) != s.want {
						t.Fatalf("step %d: returned %q, want %q", i, describe(got, now), s.want)
					}
					evs = e
				}
				if got := describe(r.Bindings(aor, now), now); got != s.want && s.wantErr == nil {
					t.Fatalf("step %d: bindings %q, want %q", i, got, s.want)
				}
				if got := describeEvents(evs); got != s.events {
					t.Fatalf("step %d: events %q, want %q", i, got, s.events)
				}
			}
		})
	}
}

func TestBindingRecordsSource(t *testing.T) {
	r := New(Options{})
	got, _, err := r.Register(t0, Request{AOR: "alice", CallID: "c", CSeq: 1, Expires: -1,
		Contacts: []Contact{{URI: "sip:alice@192.168.1.20:5060", Expires: 300}}, Source: src, Transport: "udp"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Binding{{AOR: "alice", Contact: "sip:alice@192.168.1.20:5060", Source: src, Transport: "udp",
		Expires: t0.Add(300 * time.Second), CallID: "c", CSeq: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bindings %+v, want %+v", got, want)
	}
	// The returned slice is a copy: changing it changes nothing stored.
	got[0].Contact = "changed"
	if b := r.Bindings("alice", t0); b[0].Contact != want[0].Contact {
		t.Errorf("stored binding changed through the returned slice")
	}
}

// TestBindingKeepsPath: a REGISTER through an edge proxy (RFC 3327) keeps its Path with the
// binding, a refresh that came without one (the phone now registers directly) drops it, and
// the stored Path is not the caller's slice.
func TestBindingKeepsPath(t *testing.T) {
	r := New(Options{})
	path := []string{"<sip:198.51.100.1:5060;lr;received=sip:203.0.113.9%3A40000>"}
	req := Request{AOR: "alice", CallID: "c", CSeq: 1, Expires: -1, Path: path,
		Contacts: []Contact{{URI: "sip:alice@192.168.1.20:5060", Expires: 300}}, Source: src, Transport: "udp"}
	got, _, err := r.Register(t0, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0].Path, path) {
		t.Fatalf("bindings %+v, want Path %q", got, path)
	}
	path[0] = "changed"
	if b := r.Bindings("alice", t0); b[0].Path[0] == "changed" {
		t.Errorf("stored Path changed through the request's slice")
	}
	req.CSeq, req.Path = 2, nil
	if got, _, err = r.Register(t0.Add(time.Second), req); err != nil || got[0].Path != nil {
		t.Errorf("refresh without Path: %+v, %v; want no Path", got, err)
	}
}

// TestBindingJSONKeepsPath: the state log stores bindings as JSON (package state); a Path
// survives the round trip, and a binding without one is written as before.
func TestBindingJSONKeepsPath(t *testing.T) {
	b := Binding{AOR: "alice", Contact: "sip:alice@192.168.1.20:5060", Source: src, Transport: "udp",
		Expires: t0, CallID: "c", CSeq: 1, Path: []string{"<sip:198.51.100.1;lr;received=sip:203.0.113.9%3A40000>"}}
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var back Binding
	if err := json.Unmarshal(data, &back); err != nil || !reflect.DeepEqual(back, b) {
		t.Fatalf("round trip = %+v, %v; want %+v", back, err, b)
	}
	b.Path = nil
	if data, _ := json.Marshal(b); strings.Contains(string(data), "Path") {
		t.Errorf("a binding without Path is written with one: %s", data)
	}
}

func TestCountAndOnline(t *testing.T) {
	r := New(Options{MinExpires: time.Second, MaxExpires: time.Minute, DefaultExpires: time.Hour})
	reg := func(aor string, cseq uint32, contacts ...Contact) {
		t.Helper()
		if _, _, err := r.Register(t0, Request{AOR: aor, CallID: aor, CSeq: cseq, Contacts: contacts, Expires: -1}); err != nil {
			t.Fatal(err)
		}
	}
	reg("alice", 1, Contact{URI: "sip:a1@h", Expires: -1}, Contact{URI: "sip:a2@h", Expires: 5})
	reg("bob", 1, Contact{URI: "sip:b@h", Expires: -1})
	if n := r.Count(); n != 3 {
		t.Errorf("Count = %d, want 3", n)
	}
	if b := r.Bindings("bob", t0); b[0].ExpiresIn(t0) != 60 {
		t.Errorf("default expiry %ds, want it cut to max 60s", b[0].ExpiresIn(t0))
	}
	evs := r.Expire(t0.Add(10 * time.Second))
	if len(evs) != 0 || r.Count() != 2 {
		t.Errorf("after 10s: events %v, count %d; want none, 2", evs, r.Count())
	}
	evs = r.Expire(t0.Add(time.Minute))
	if got := describeEvents(evs); got != "alice- bob-" || r.Count() != 0 || r.Online("alice") {
		t.Errorf("after 60s: events %q, count %d; want \"alice- bob-\", 0", got, r.Count())
	}
	if r.MinExpires() != time.Second {
		t.Errorf("MinExpires = %v", r.MinExpires())
	}
}

func TestRestoreAndOnChange(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	var changes []string
	r := New(Options{OnChange: func(aor string, bs []Binding) {
		changes = append(changes, aor+":"+strconv.Itoa(len(bs)))
	}})
	evs := r.Restore(t0, []Binding{
		{AOR: "bob", Contact: "sip:bob@a", Source: src, Transport: "tcp", Expires: t0.Add(time.Minute)},
		{AOR: "alice", Contact: "sip:alice@a", Expires: t0.Add(time.Minute)},
		{AOR: "alice", Contact: "sip:alice@a", Expires: t0.Add(time.Minute)}, // twice
		{AOR: "carol", Contact: "sip:carol@a", Expires: t0},                  // lapsed
	})
	if want := []Event{{AOR: "alice", Online: true}, {AOR: "bob", Online: true}}; !reflect.DeepEqual(evs, want) {
		t.Errorf("events %v, want %v", evs, want)
	}
	if r.Count() != 2 || r.Online("carol") || len(changes) != 0 {
		t.Errorf("count %d carol %v changes %v", r.Count(), r.Online("carol"), changes)
	}
	if bs := r.Bindings("bob", t0); len(bs) != 1 || bs[0].Source != src || bs[0].Transport != "tcp" {
		t.Errorf("bob's flow not kept: %+v", bs)
	}
	if _, _, err := r.Register(t0, Request{AOR: "alice", CallID: "x", CSeq: 1, Expires: 0,
		Contacts: []Contact{{URI: "sip:alice@a", Expires: -1}}}); err != nil {
		t.Fatal(err)
	}
	r.Expire(t0.Add(time.Hour))
	if want := []string{"alice:0", "bob:0"}; !reflect.DeepEqual(changes, want) {
		t.Errorf("changes %v, want %v", changes, want)
	}
}

// TestReplace: another node's bindings replace an AOR's here without OnChange (they are
// in the log already); lapsed and foreign ones are dropped; the events say online/offline.
func TestReplace(t *testing.T) {
	now := time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC)
	changes := 0
	r := New(Options{OnChange: func(string, []Binding) { changes++ }})
	live := Binding{AOR: "ana", Contact: "sip:ana@192.0.2.1", Expires: now.Add(time.Minute)}
	lapsed := Binding{AOR: "ana", Contact: "sip:ana@192.0.2.2", Expires: now.Add(-time.Second)}
	other := Binding{AOR: "ben", Contact: "sip:ben@192.0.2.3", Expires: now.Add(time.Minute)}
	for _, tc := range []struct {
		name   string
		in     []Binding
		events []Event
		count  int
	}{
		{"first binding: online", []Binding{live, lapsed, other}, []Event{{AOR: "ana", Online: true}}, 1},
		{"the same again: nothing", []Binding{live}, nil, 1},
		{"none: offline", nil, []Event{{AOR: "ana", Online: false}}, 0},
		{"only lapsed: still offline", []Binding{lapsed}, nil, 0},
	} {
		if ev := r.Replace(now, "ana", tc.in); !reflect.DeepEqual(ev, tc.events) {
			t.Errorf("%s: events %v, want %v", tc.name, ev, tc.events)
		}
		if r.Count() != tc.count || len(r.Bindings("ana", now)) != tc.count {
			t.Errorf("%s: count %d, bindings %v", tc.name, r.Count(), r.Bindings("ana", now))
		}
	}
	if changes != 0 {
		t.Errorf("OnChange called %d times", changes)
	}
}
