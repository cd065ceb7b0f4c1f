package routing

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestOverrides(t *testing.T) {
	var s Overrides // the zero value is ready
	t0 := time.Date(2026, 12, 25, 9, 0, 0, 0, time.UTC)
	if got := s.Snapshot(); len(got) != 0 {
		t.Fatalf("empty Snapshot = %v", got)
	}
	if _, _, err := s.Set(Override{Kind: "open", Schedule: "a"}); !errors.Is(err, ErrOverrideKind) {
		t.Errorf("Set of kind open: %v", err)
	}
	for _, bad := range []Override{{Kind: ForceClosed}, {Kind: ForceClosed, Schedule: "a", Route: "r"}, {Kind: ForceRoute}, {Kind: ForceRoute, Route: "r", Schedule: "a"}} {
		if _, _, err := s.Set(bad); !errors.Is(err, ErrOverrideName) {
			t.Errorf("Set(%+v): %v, want ErrOverrideName", bad, err)
		}
	}
	mustSet := func(o Override) (Override, bool) {
		t.Helper()
		prev, replaced, err := s.Set(o)
		if err != nil {
			t.Fatal(err)
		}
		return prev, replaced
	}
	mustSet(Override{Kind: ForceClosed, Schedule: "b", Since: t0})
	mustSet(Override{Kind: ForceClosed, Schedule: "a", Since: t0, Until: t0.Add(time.Hour)})
	mustSet(Override{Kind: ForceRoute, Route: "r1", Since: t0})
	if prev, replaced := mustSet(Override{Kind: ForceRoute, Route: "r2", Since: t0.Add(time.Minute)}); !replaced || prev.Route != "r1" {
		t.Errorf("second ForceRoute replaced %v %+v, want r1", replaced, prev)
	}
	got := fmt.Sprint(names(s.Snapshot()))
	if want := "[route:r2 closed:a closed:b]"; got != want {
		t.Errorf("Snapshot = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(names(s.Active(t0.Add(2*time.Hour)))), "[route:r2 closed:b]"; got != want {
		t.Errorf("Active after a's until = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(names(s.Active(t0.Add(-time.Second)))), "[]"; got != want {
		t.Errorf("Active before since = %s, want %s", got, want)
	}
	if gone := s.Expire(t0.Add(2 * time.Hour)); len(gone) != 1 || gone[0].Schedule != "a" {
		t.Errorf("Expire = %v, want a", gone)
	}
	if o, ok := s.Clear(ForceRoute, "ignored"); !ok || o.Route != "r2" {
		t.Errorf("Clear(route) = %+v, %v", o, ok)
	}
	if _, ok := s.Clear(ForceRoute, ""); ok {
		t.Error("second Clear(route) found one")
	}
	if _, ok := s.Clear(ForceClosed, "a"); ok {
		t.Error("Clear of an expired override found it")
	}
	if got, want := fmt.Sprint(names(s.Snapshot())), "[closed:b]"; got != want {
		t.Errorf("Snapshot at the end = %s, want %s", got, want)
	}
}

func names(os []Override) []string {
	out := []string{}
	for _, o := range os {
		out = append(out, string(o.Kind)+":"+o.Name())
	}
	return out
}

// TestOverridesConcurrent is for the race detector: the admin API writes while calls read.
func TestOverridesConcurrent(t *testing.T) {
	var s Overrides
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				name := fmt.Sprintf("s%d", (i+j)%3)
				switch j % 4 {
				case 0:
					_, _, _ = s.Set(Override{Kind: ForceClosed, Schedule: name})
				case 1:
					_, _, _ = s.Set(Override{Kind: ForceRoute, Route: name})
				case 2:
					s.Clear(ForceClosed, name)
				default:
					for _, o := range s.Snapshot() {
						if o.Check() != nil {
							t.Errorf("Snapshot holds a bad override %+v", o)
						}
					}
					s.Expire(time.Now())
				}
			}
		})
	}
	wg.Wait()
	if n := len(s.Snapshot()); n > 4 {
		t.Errorf("%d overrides; at most one route and three schedules expected", n)
	}
}

func TestOverrideString(t *testing.T) {
	t0 := time.Date(2026, 12, 25, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		o    Override
		want string
	}{
		{Override{Kind: ForceClosed, Schedule: "advocates", Since: t0}, "schedule advocates forced closed since 2026-12-25T09:00:00Z"},
		{Override{Kind: ForceRoute, Route: "partner", Since: t0, Until: t0.Add(time.Hour), Reason: `fire "drill"`},
			`all calls forced to route partner since 2026-12-25T09:00:00Z until 2026-12-25T10:00:00Z ("fire \"drill\"")`},
	} {
		if got := tt.o.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
	}
}

func TestOverridesOnChange(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	var s Overrides
	var seen [][]Override
	s.OnChange(func(os []Override) { seen = append(seen, os) })
	day := Override{Kind: ForceClosed, Schedule: "day", Since: t0, Until: t0.Add(time.Minute)}
	route := Override{Kind: ForceRoute, Route: "backup", Since: t0}
	for _, o := range []Override{day, route} {
		if _, _, err := s.Set(o); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Set(Override{Kind: "bad"}); err == nil {
		t.Fatal("bad override set")
	}
	s.Clear(ForceClosed, "night") // none: no change
	s.Expire(t0)                  // nothing ended
	s.Expire(t0.Add(time.Minute))
	s.Clear(ForceRoute, "")
	want := [][]Override{{day}, {route, day}, {route}, {}}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("changes\n got %v\nwant %v", seen, want)
	}
}

// TestOverridesReplace: another node's set replaces this one's without OnChange;
// ill-formed overrides are skipped.
func TestOverridesReplace(t *testing.T) {
	var s Overrides
	changes := 0
	s.OnChange(func([]Override) { changes++ })
	t0 := time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC)
	if _, _, err := s.Set(Override{Kind: ForceClosed, Schedule: "day", Since: t0}); err != nil {
		t.Fatal(err)
	}
	changes = 0
	storm := Override{Kind: ForceRoute, Route: "backup", Reason: "storm", Since: t0}
	s.Replace([]Override{storm, {Kind: "nope"}})
	if got := s.Snapshot(); !reflect.DeepEqual(got, []Override{storm}) {
		t.Errorf("snapshot %v", got)
	}
	s.Replace(nil)
	if got := s.Snapshot(); len(got) != 0 {
		t.Errorf("after an empty set: %v", got)
	}
	if changes != 0 {
		t.Errorf("OnChange called %d times", changes)
	}
}
