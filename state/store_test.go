package state

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/hotline-project/hotline/registrar"
	"github.com/hotline-project/hotline/routing"
)

func openStore(t *testing.T, dir string, threshold uint64) *Store {
	t.Helper()
	return openStoreWith(t, Options{Dir: dir, SnapshotThreshold: threshold})
}

func openStoreWith(t *testing.T, o Options) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	o.Now = func() time.Time { return t0 }
	s, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStoreReopen: what was synced is there after a reopen, from the log alone, from a
// snapshot alone, and from a snapshot plus the log after it.
func TestStoreReopen(t *testing.T) {
	for _, tc := range []struct {
		name     string
		snapshot bool // take a snapshot half way
	}{{"log", false}, {"snapshot and log", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, 1024)
			ctx := context.Background()
			b := binding("alice", "sip:alice@192.0.2.7:5062", t0.Add(time.Hour))
			s.Submit(Op{Kind: KindBindings, AOR: "alice", Bindings: []registrar.Binding{b}})
			s.Submit(Op{Kind: KindAdvocate, Advocate: &Advocate{ID: "alice", Paused: true, PauseReason: "meal"}})
			if err := s.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if tc.snapshot {
				if err := s.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			o := routing.Override{Kind: routing.ForceClosed, Schedule: "day", Reason: "storm", Since: t0}
			s.Submit(Op{Kind: KindOverrides, Overrides: []routing.Override{o}})
			if err := s.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			want, _ := s.State()
			if st := s.Status(); st.State != "Leader" || len(st.Members) != 1 || st.AppliedIndex == 0 {
				t.Errorf("status %+v", st)
			}
			if err := s.Close(ctx); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, dir, 1024)
			defer s.Close(ctx)
			got, _ := s.State()
			if !reflect.DeepEqual(fill(got), fill(want)) {
				t.Errorf("after reopen\n got %+v\nwant %+v", got, want)
			}
			if a := got.Advocates["alice"]; !a.Paused || a.PauseReason != "meal" {
				t.Errorf("alice %+v", a)
			}
			if len(got.Bindings["alice"]) != 1 || len(got.Overrides) != 1 {
				t.Errorf("bindings %v overrides %v", got.Bindings, got.Overrides)
			}
		})
	}
}

// TestStoreSnapshotsByItself: past the threshold a snapshot is taken and the log
// truncated, and a reopen still has everything.
func TestStoreSnapshotsByItself(t *testing.T) {
	dir := t.TempDir()
	s := openStoreWith(t, Options{Dir: dir, SnapshotThreshold: 16, SnapshotInterval: 20 * time.Millisecond})
	ctx := context.Background()
	for i := range 200 {
		s.Submit(Op{Kind: KindAdvocate, Advocate: &Advocate{ID: "a", PauseReason: string(rune('a' + i%26)), Paused: true}})
		if err := s.Sync(ctx); err != nil { // one entry each
			t.Fatal(err)
		}
	}
	want, _ := s.State()
	deadline := time.Now().Add(10 * time.Second)
	for {
		snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
		if len(snaps) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no snapshot taken")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, 16)
	defer s.Close(ctx)
	got, _ := s.State()
	if !reflect.DeepEqual(fill(got), fill(want)) {
		t.Errorf("after reopen\n got %+v\nwant %+v", got, want)
	}
}

// TestStoreLocked: a second store on the same directory is refused.
func TestStoreLocked(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 0)
	defer s.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s2, err := Open(ctx, Options{Dir: dir}); err == nil {
		s2.Close(ctx)
		t.Fatal("opened twice")
	}
}
