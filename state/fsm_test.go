package state

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hotline-project/hotline/registrar"
	"github.com/hotline-project/hotline/routing"
)

var t0 = time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)

func binding(aor, contact string, exp time.Time) registrar.Binding {
	return registrar.Binding{AOR: aor, Contact: contact, Source: netip.MustParseAddrPort("192.0.2.7:5062"),
		Transport: "udp", Expires: exp, CallID: "c1", CSeq: 3}
}

// logOf encodes entries as committed log entries.
func logOf(t *testing.T, es ...Entry) []*raft.Log {
	t.Helper()
	var ls []*raft.Log
	for i, e := range es {
		b, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: b})
	}
	return ls
}

func TestFSMApply(t *testing.T) {
	alice := binding("alice", "sip:alice@192.0.2.7:5062", t0.Add(10*time.Minute))
	bob := binding("bob", "sip:bob@192.0.2.8", t0.Add(time.Minute))
	storm := routing.Override{Kind: routing.ForceRoute, Route: "backup", Reason: "storm", Since: t0}
	closing := routing.Override{Kind: routing.ForceClosed, Schedule: "day", Since: t0, Until: t0.Add(2 * time.Minute)}
	paused := Advocate{ID: "alice", Paused: true, PauseReason: "meal"}
	anaPhone := binding("ana", "sip:ana@192.0.2.9", t0.Add(time.Hour))
	for _, tc := range []struct {
		name    string
		entries []Entry
		want    State
	}{
		{"empty", nil, newState()},
		{"registrations kept with their flow", []Entry{
			{At: t0, Ops: []Op{{Kind: KindBindings, AOR: "alice", Bindings: []registrar.Binding{alice}},
				{Kind: KindBindings, AOR: "bob", Bindings: []registrar.Binding{bob}}}},
		}, State{At: t0, Bindings: map[string][]registrar.Binding{"alice": {alice}, "bob": {bob}}}},
		{"unregister removes", []Entry{
			{At: t0, Ops: []Op{{Kind: KindBindings, AOR: "alice", Bindings: []registrar.Binding{alice}}}},
			{At: t0.Add(time.Second), Ops: []Op{{Kind: KindBindings, AOR: "alice"}}},
		}, State{At: t0.Add(time.Second)}},
		{"a lapsed binding is dropped at the next entry's time", []Entry{
			{At: t0, Ops: []Op{{Kind: KindBindings, AOR: "alice", Bindings: []registrar.Binding{alice}},
				{Kind: KindBindings, AOR: "bob", Bindings: []registrar.Binding{bob}}}},
			{At: t0.Add(time.Minute), Ops: []Op{{Kind: KindAdvocate, Advocate: &paused}}},
		}, State{At: t0.Add(time.Minute), Bindings: map[string][]registrar.Binding{"alice": {alice}},
			Advocates: map[string]Advocate{"alice": paused}}},
		{"advocate replaced", []Entry{
			{At: t0, Ops: []Op{{Kind: KindAdvocate, Advocate: &paused}}},
			{At: t0, Ops: []Op{{Kind: KindAdvocate, Advocate: &Advocate{ID: "alice", LoggedOut: true}}}},
		}, State{At: t0, Advocates: map[string]Advocate{"alice": {ID: "alice", LoggedOut: true}}}},
		{"overrides replaced, ended ones dropped", []Entry{
			{At: t0, Ops: []Op{{Kind: KindOverrides, Overrides: []routing.Override{storm, closing}}}},
			{At: t0.Add(2 * time.Minute), Ops: []Op{{Kind: KindAdvocate, Advocate: &paused}}},
		}, State{At: t0.Add(2 * time.Minute), Overrides: []routing.Override{storm},
			Advocates: map[string]Advocate{"alice": paused}}},
		{"overrides cleared", []Entry{
			{At: t0, Ops: []Op{{Kind: KindOverrides, Overrides: []routing.Override{storm}}}},
			{At: t0, Ops: []Op{{Kind: KindOverrides}}},
		}, State{At: t0}},
		{"slots set, deleted, expired", []Entry{
			{At: t0, Ops: []Op{{Kind: KindSlot, Slot: &Slot{Key: "k1", Queue: "main", Since: t0, Expires: t0.Add(time.Hour)}},
				{Kind: KindSlot, Slot: &Slot{Key: "k2", Queue: "main", Since: t0, Expires: t0.Add(time.Minute)}},
				{Kind: KindSlot, Slot: &Slot{Key: "k3", Queue: "main", Since: t0, Expires: t0.Add(time.Hour)}}}},
			{At: t0.Add(time.Minute), Ops: []Op{{Kind: KindSlot, Slot: &Slot{Key: "k3"}, Delete: true}}},
		}, State{At: t0.Add(time.Minute), Slots: map[string]Slot{"k1": {Key: "k1", Queue: "main", Since: t0, Expires: t0.Add(time.Hour)}}}},
		{"claims: first granted, other call refused, released, lapsed, node released", []Entry{
			{At: t0, Ops: []Op{{Kind: KindClaim, Claim: &Claim{Advocate: "ana", Node: "n1", Call: "c1", Until: t0.Add(time.Minute)}},
				{Kind: KindClaim, Claim: &Claim{Advocate: "ana", Node: "n2", Call: "c2", Until: t0.Add(time.Minute)}},
				{Kind: KindClaim, Claim: &Claim{Advocate: "ben", Node: "n2", Call: "c2", Until: t0.Add(30 * time.Second)}},
				{Kind: KindClaim, Claim: &Claim{Advocate: "cy", Node: "n2", Call: "c3", Until: t0.Add(time.Hour)}},
				{Kind: KindClaim, Claim: &Claim{Advocate: "di", Node: "n1", Call: "c4", Until: t0.Add(time.Hour)}}}},
			// ana's holder extends it; a release by the wrong call does nothing.
			{At: t0, Ops: []Op{{Kind: KindClaim, Claim: &Claim{Advocate: "ana", Node: "n1", Call: "c1", Until: t0.Add(2 * time.Minute)}},
				{Kind: KindRelease, Claim: &Claim{Advocate: "ana", Node: "n2", Call: "c2"}},
				{Kind: KindRelease, Claim: &Claim{Advocate: "di", Node: "n1", Call: "c4"}},
				{Kind: KindReleaseNode, Claim: &Claim{Node: "n2"}}}},
			// ben's lapsed by now (cy's went with n2).
			{At: t0.Add(time.Minute), Ops: nil},
		}, State{At: t0.Add(time.Minute), Claims: map[string]Claim{"ana": {Advocate: "ana", Node: "n1", Call: "c1", Until: t0.Add(2 * time.Minute)}}}},
		{"claims: order across nodes", []Entry{
			// w1 waits on n2 (priority 0, since t0, Spanish in a Spanish queue); w2 on n2 too,
			// priority 5; w3 on n3 is rung already (holds cy). ana's phone is registered.
			{At: t0, Ops: []Op{
				{Kind: KindBindings, AOR: "ana", Bindings: []registrar.Binding{anaPhone}},
				{Kind: KindWait, Waiter: &Waiter{Call: "w1", Node: "n2", Queue: "es", Language: "es", QueueLanguages: []string{"es"}, Since: t0, Until: t0.Add(time.Minute)}},
				{Kind: KindWait, Waiter: &Waiter{Call: "w3", Node: "n3", Queue: "es", QueueLanguages: []string{"es"}, Since: t0, Until: t0.Add(time.Minute)}},
				{Kind: KindClaim, Claim: &Claim{Advocate: "cy", Node: "n3", Call: "w3", Until: t0.Add(time.Minute)}},
			}},
			{At: t0.Add(time.Second), Ops: []Op{
				// n1's caller came later: refused ana (she speaks Spanish: w1 first)...
				{Kind: KindClaim, Claim: &Claim{Advocate: "ana", Node: "n1", Call: "c1", Until: t0.Add(time.Minute), Queue: "es", Since: t0.Add(time.Second), Languages: []string{"es"}}},
				// ...but granted bo, who serves es in English only (w1 needs Spanish)...
				{Kind: KindClaim, Claim: &Claim{Advocate: "bo", Node: "n1", Call: "c1", Until: t0.Add(time.Minute), Queue: "es", Since: t0.Add(time.Second), Languages: []string{"en"}}},
				// ...and a caller of priority 5 is ahead of w1: granted di.
				{Kind: KindClaim, Claim: &Claim{Advocate: "di", Node: "n1", Call: "c2", Until: t0.Add(time.Minute), Queue: "es", Priority: 5, Since: t0.Add(time.Second), Languages: []string{"es"}}},
				// gi has no phone registered in the log (a phone in the console's page): the
				// other nodes cannot ring her, so no order holds her.
				{Kind: KindClaim, Claim: &Claim{Advocate: "gi", Node: "n1", Call: "c6", Until: t0.Add(time.Minute), Queue: "es", Since: t0.Add(time.Second), Languages: []string{"es"}}},
				// n2's own caller behind w1 is not held up by w1 (n2's engine orders its own).
				{Kind: KindClaim, Claim: &Claim{Advocate: "ed", Node: "n2", Call: "c4", Until: t0.Add(time.Minute), Queue: "es", Since: t0.Add(time.Second), Languages: []string{"es"}}},
			}},
			// w1 leaves; now n1's caller may have fa.
			{At: t0.Add(2 * time.Second), Ops: []Op{
				{Kind: KindWait, Waiter: &Waiter{Call: "w1", Node: "n2"}, Delete: true},
				{Kind: KindClaim, Claim: &Claim{Advocate: "fa", Node: "n1", Call: "c5", Until: t0.Add(time.Minute), Queue: "es", Since: t0.Add(time.Second), Languages: []string{"es"}}},
			}},
		}, State{At: t0.Add(2 * time.Second), Bindings: map[string][]registrar.Binding{"ana": {anaPhone}},
			Waiting: map[string]Waiter{"w3": {Call: "w3", Node: "n3", Queue: "es", QueueLanguages: []string{"es"}, Since: t0, Until: t0.Add(time.Minute)}},
			Claims: map[string]Claim{
				"cy": {Advocate: "cy", Node: "n3", Call: "w3", Until: t0.Add(time.Minute)},
				"bo": {Advocate: "bo", Node: "n1", Call: "c1", Until: t0.Add(time.Minute), Queue: "es", Since: t0.Add(time.Second), Languages: []string{"en"}},
				"di": {Advocate: "di", Node: "n1", Call: "c2", Until: t0.Add(time.Minute), Queue: "es", Priority: 5, Since: t0.Add(time.Second), Languages: []string{"es"}},
				"ed": {Advocate: "ed", Node: "n2", Call: "c4", Until: t0.Add(time.Minute), Queue: "es", Since: t0.Add(time.Second), Languages: []string{"es"}},
				"fa": {Advocate: "fa", Node: "n1", Call: "c5", Until: t0.Add(time.Minute), Queue: "es", Since: t0.Add(time.Second), Languages: []string{"es"}},
				"gi": {Advocate: "gi", Node: "n1", Call: "c6", Until: t0.Add(time.Minute), Queue: "es", Since: t0.Add(time.Second), Languages: []string{"es"}},
			}}},
		{"callbacks set, updated, deleted, expired", []Entry{
			{At: t0, Ops: []Op{{Kind: KindCallback, Callback: &Callback{ID: "c1", Queue: "es", KeyID: "k", Sealed: []byte{1}, Expires: t0.Add(time.Hour)}},
				{Kind: KindCallback, Callback: &Callback{ID: "c2", Queue: "es", KeyID: "k", Sealed: []byte{2}, Expires: t0.Add(time.Minute)}},
				{Kind: KindCallback, Callback: &Callback{ID: "c3", Queue: "es", KeyID: "k", Sealed: []byte{3}, Expires: t0.Add(time.Hour)}}}},
			{At: t0.Add(time.Minute), Ops: []Op{{Kind: KindCallback, Callback: &Callback{ID: "c3"}, Delete: true},
				{Kind: KindCallback, Callback: &Callback{ID: "c1", Queue: "es", KeyID: "k", Sealed: []byte{1}, Expires: t0.Add(time.Hour), Attempts: 1, Last: "busy"}}}},
		}, State{At: t0.Add(time.Minute), Callbacks: map[string]Callback{"c1": {ID: "c1", Queue: "es", KeyID: "k", Sealed: []byte{1}, Expires: t0.Add(time.Hour), Attempts: 1, Last: "busy"}}}},
		{"time never goes back", []Entry{
			{At: t0.Add(time.Minute), Ops: nil},
			{At: t0, Ops: []Op{{Kind: KindBindings, AOR: "bob", Bindings: []registrar.Binding{bob}}}},
		}, State{At: t0.Add(time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFSM()
			ls := logOf(t, tc.entries...)
			for _, l := range ls {
				if r := f.Apply(l); r != nil && (r != ErrClaimed || !strings.HasPrefix(tc.name, "claims")) {
					t.Fatalf("apply %d: %v", l.Index, r)
				}
			}
			got, idx := f.State()
			if idx != uint64(len(ls)) {
				t.Errorf("applied index %d, want %d", idx, len(ls))
			}
			want := fill(tc.want)
			if !reflect.DeepEqual(fill(got), want) {
				t.Errorf("state\n got %+v\nwant %+v", got, want)
			}
			// The same log applied again gives the same state: Apply reads no clock.
			g := NewFSM()
			for _, l := range ls {
				g.Apply(l)
			}
			if again, _ := g.State(); !reflect.DeepEqual(fill(again), fill(got)) {
				t.Errorf("not deterministic:\n%+v\n%+v", again, got)
			}
			// Snapshot and restore give the same state.
			h := NewFSM()
			restore(t, f, h)
			if back, _ := h.State(); !reflect.DeepEqual(fill(back), fill(got)) {
				t.Errorf("restored\n got %+v\nwant %+v", back, got)
			}
		})
	}
}

// fill makes empty maps and slices comparable.
func fill(s State) State {
	s.Version = Version
	if s.Bindings == nil {
		s.Bindings = map[string][]registrar.Binding{}
	}
	if s.Advocates == nil {
		s.Advocates = map[string]Advocate{}
	}
	if s.Slots == nil {
		s.Slots = map[string]Slot{}
	}
	if s.Claims == nil {
		s.Claims = map[string]Claim{}
	}
	if s.Waiting == nil {
		s.Waiting = map[string]Waiter{}
	}
	if s.Callbacks == nil {
		s.Callbacks = map[string]Callback{}
	}
	if s.CallbackNodes == nil {
		s.CallbackNodes = map[string]string{}
	}
	for id, cb := range s.Callbacks {
		cb.Expires = cb.Expires.UTC()
		s.Callbacks[id] = cb
	}
	if len(s.Overrides) == 0 {
		s.Overrides = nil
	}
	for k, bs := range s.Bindings {
		for i := range bs {
			bs[i].Expires = bs[i].Expires.UTC()
		}
		s.Bindings[k] = bs
	}
	return s
}

type sink struct {
	bytes.Buffer
	cancelled bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { s.cancelled = true; return nil }
func (s *sink) Close() error  { return nil }

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// restore snapshots from into to.
func restore(t *testing.T, from, to *FSM) {
	t.Helper()
	snap, err := from.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); err != nil || s.cancelled {
		t.Fatalf("persist: %v (cancelled %v)", err, s.cancelled)
	}
	snap.Release()
	if err := to.Restore(nopCloser{bytes.NewReader(s.Bytes())}); err != nil {
		t.Fatal(err)
	}
}

func TestFSMRestoreRefusesBadSnapshots(t *testing.T) {
	for _, tc := range []struct{ name, data string }{
		{"not json", "{"},
		{"other version", `{"v":2}`},
		{"no version", `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFSM()
			if err := f.Restore(nopCloser{bytes.NewReader([]byte(tc.data))}); err == nil {
				t.Error("restored")
			}
		})
	}
}

func TestFSMSkipsBadEntries(t *testing.T) {
	f := NewFSM()
	var skipped []uint64
	f.onErr = func(i uint64, _ error) { skipped = append(skipped, i) }
	r := f.Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: []byte(`{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"nope"}]}`)})
	if err, ok := r.(error); !ok || !errors.Is(err, ErrEntry) {
		t.Errorf("response %v, want ErrEntry", r)
	}
	if !reflect.DeepEqual(skipped, []uint64{7}) {
		t.Errorf("skipped %v", skipped)
	}
	// Raft's own entries (configuration, barriers) are not commands.
	if r := f.Apply(&raft.Log{Index: 8, Type: raft.LogBarrier}); r != nil {
		t.Errorf("barrier: %v", r)
	}
	if _, idx := f.State(); idx != 8 {
		t.Errorf("index %d", idx)
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		err        error
	}{
		{"ok", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"advocate","advocate":{"id":"a"}}]}`, nil},
		{"no ops", `{"v":1,"at":"2026-12-04T22:00:00Z"}`, nil},
		{"garbage", `]`, ErrEntry},
		{"version", `{"v":9,"at":"2026-12-04T22:00:00Z"}`, ErrVersion},
		{"no time", `{"v":1}`, ErrEntry},
		{"unknown kind", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"x"}]}`, ErrEntry},
		{"advocate without id", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"advocate","advocate":{}}]}`, ErrEntry},
		{"advocate missing", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"advocate"}]}`, ErrEntry},
		{"bindings without aor", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"bindings"}]}`, ErrEntry},
		{"binding of another aor", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"bindings","aor":"a","bindings":[{"AOR":"b","Contact":"sip:b@x"}]}]}`, ErrEntry},
		{"bad override", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"overrides","overrides":[{"kind":"route"}]}]}`, ErrEntry},
		{"slot without queue", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"slot","slot":{"key":"k"}}]}`, ErrEntry},
		{"claim", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"claim","claim":{"advocate":"a","node":"n1","call":"c"}}]}`, nil},
		{"claim without a call", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"claim","claim":{"advocate":"a","node":"n1"}}]}`, ErrEntry},
		{"release node without a node", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"release_node","claim":{}}]}`, ErrEntry},
		{"waiter", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"wait","waiter":{"call":"c","node":"n1","queue":"q"}}]}`, nil},
		{"waiter without a queue", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"wait","waiter":{"call":"c","node":"n1"}}]}`, ErrEntry},
		{"waiter gone needs no queue", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"wait","waiter":{"call":"c","node":"n1"},"delete":true}]}`, nil},
		{"slot delete needs only a key", `{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"slot","slot":{"key":"k"},"delete":true}]}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.data))
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Errorf("err %v, want %v", err, tc.err)
			}
		})
	}
}

// FuzzDecode: whatever Decode accepts, Apply applies without a panic, and it encodes
// again to an entry that decodes the same.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"advocate","advocate":{"id":"a","paused":true}}]}`))
	f.Add([]byte(`{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"bindings","aor":"a","bindings":[{"AOR":"a","Contact":"sip:a@x","Source":"192.0.2.1:5060","Expires":"2026-12-04T23:00:00Z"}]}]}`))
	f.Add([]byte(`{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"overrides","overrides":[{"kind":"closed","schedule":"day","since":"2026-12-04T22:00:00Z"}]}]}`))
	f.Add([]byte(`{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"slot","slot":{"key":"k","queue":"q"}}]}`))
	f.Add([]byte(`{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"wait","waiter":{"call":"c","node":"n1","queue":"q","queue_languages":["en"]}},{"kind":"claim","claim":{"advocate":"a","node":"n2","call":"d","queue":"q","languages":["en"]}}]}`))
	f.Add([]byte(`{"v":1,"at":"2026-12-04T22:00:00Z","ops":[{"kind":"callback","callback":{"id":"cb-1","queue":"q","key_id":"k1","sealed":"AAEC","expires":"2026-12-05T00:00:00Z"}},{"kind":"callback","callback":{"id":"cb-2"},"delete":true}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		var s State = newState()
		s.apply(e)
		again, err := Encode(e)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("re-encoded entry refused: %v\n%s", err, again)
		}
	})
}

// TestCallbackNodes: the node whose entry booked a callback is kept with it (it alone
// runs it), and goes with it.
func TestCallbackNodes(t *testing.T) {
	f := NewFSM()
	for _, l := range logOf(t,
		Entry{At: t0, Node: "n2", Ops: []Op{{Kind: KindCallback, Callback: &Callback{ID: "c1", Queue: "es", KeyID: "k", Sealed: []byte{1}, Expires: t0.Add(time.Hour)}},
			{Kind: KindCallback, Callback: &Callback{ID: "c2", Queue: "es", KeyID: "k", Sealed: []byte{2}, Expires: t0.Add(time.Hour)}}}},
		Entry{At: t0, Node: "n3", Ops: []Op{{Kind: KindCallback, Callback: &Callback{ID: "c2"}, Delete: true}}},
	) {
		f.Apply(l)
	}
	st, _ := f.State()
	if !reflect.DeepEqual(st.CallbackNodes, map[string]string{"c1": "n2"}) {
		t.Errorf("callback nodes %v", st.CallbackNodes)
	}
	g := NewFSM()
	restore(t, f, g)
	if back, _ := g.State(); !reflect.DeepEqual(back.CallbackNodes, st.CallbackNodes) {
		t.Errorf("restored %v", back.CallbackNodes)
	}
}

// TestFSMClaims: Claims is the state's claims, a copy the caller may change.
func TestFSMClaims(t *testing.T) {
	f := NewFSM()
	for _, l := range logOf(t,
		Entry{At: t0, Node: "n1", Ops: []Op{{Kind: KindClaim, Claim: &Claim{Advocate: "ana", Node: "n1", Call: "c1", Until: t0.Add(time.Minute)}}}},
	) {
		f.Apply(l)
	}
	cs := f.Claims()
	st, _ := f.State()
	if len(cs) != 1 || !reflect.DeepEqual(cs, st.Claims) {
		t.Fatalf("claims %v, state's %v", cs, st.Claims)
	}
	delete(cs, "ana")
	if len(f.Claims()) != 1 {
		t.Error("changing the copy changed the state's claims")
	}
}
