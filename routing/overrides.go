package routing

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// OverrideKind is what an emergency override does.
type OverrideKind string

const (
	// ForceClosed makes a schedule closed whatever its hours say.
	ForceClosed OverrideKind = "closed"
	// ForceRoute sends every call by one route, without trying the others.
	ForceRoute OverrideKind = "route"
)

// Override is an emergency override, set at runtime (over the admin API) rather than in
// the configuration.
type Override struct {
	Kind     OverrideKind `json:"kind"`
	Schedule string       `json:"schedule,omitempty"` // for ForceClosed
	Route    string       `json:"route,omitempty"`    // for ForceRoute
	Reason   string       `json:"reason,omitempty"`   // free text from whoever set it
	Since    time.Time    `json:"since"`
	// Until ends the override; zero means until it is cleared.
	Until time.Time `json:"until,omitzero"`
}

// Errors from Override.Check.
var (
	ErrOverrideKind = errors.New("kind must be closed or route")
	ErrOverrideName = errors.New("a closed override needs a schedule and no route; a route override needs a route and no schedule")
)

// Check reports whether o is well formed; it does not look o's names up in any Table.
func (o Override) Check() error {
	switch o.Kind {
	case ForceClosed:
		if o.Schedule == "" || o.Route != "" {
			return ErrOverrideName
		}
	case ForceRoute:
		if o.Route == "" || o.Schedule != "" {
			return ErrOverrideName
		}
	default:
		return ErrOverrideKind
	}
	return nil
}

// Name is the schedule a ForceClosed override closes or the route a ForceRoute forces.
func (o Override) Name() string {
	if o.Kind == ForceClosed {
		return o.Schedule
	}
	return o.Route
}

// String describes o, such as `schedule advocates forced closed since 2026-12-25T03:00:00Z ("storm")`.
func (o Override) String() string {
	var b strings.Builder
	if o.Kind == ForceClosed {
		fmt.Fprintf(&b, "schedule %s forced closed", o.Schedule)
	} else {
		fmt.Fprintf(&b, "all calls forced to route %s", o.Route)
	}
	fmt.Fprintf(&b, " since %s", o.Since.Format(time.RFC3339))
	if !o.Until.IsZero() {
		fmt.Fprintf(&b, " until %s", o.Until.Format(time.RFC3339))
	}
	if o.Reason != "" {
		fmt.Fprintf(&b, " (%q)", o.Reason)
	}
	return b.String()
}

// ActiveAt reports whether o is in force at now: from Since (if set) until Until (if set).
func (o Override) ActiveAt(now time.Time) bool {
	return !now.Before(o.Since) && (o.Until.IsZero() || now.Before(o.Until))
}

func activeRouteOverride(os []Override, now time.Time) (Override, bool) {
	for _, o := range os {
		if o.Kind == ForceRoute && o.ActiveAt(now) {
			return o, true
		}
	}
	return Override{}, false
}

func activeClosedOverride(os []Override, schedule string, now time.Time) (Override, bool) {
	for _, o := range os {
		if o.Kind == ForceClosed && o.Schedule == schedule && o.ActiveAt(now) {
			return o, true
		}
	}
	return Override{}, false
}

// Overrides holds the emergency overrides in memory; it is safe for concurrent use. It
// lives outside any Table, so overrides survive a configuration reload; OnChange lets the
// server keep them across a restart (package state).
// There is at most one ForceRoute override, and one ForceClosed override per schedule.
// The zero value is empty and ready to use.
type Overrides struct {
	mu       sync.Mutex
	m        map[overrideKey]Override
	onChange func([]Override)
}

// OnChange has f told every override set after each change (Set, Clear, Expire), in the
// order of the changes, with the lock held: f must not block or call back.
func (s *Overrides) OnChange(f func([]Override)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = f
}

// changed calls onChange; the lock is held.
func (s *Overrides) changed() {
	if s.onChange == nil {
		return
	}
	all := make([]Override, 0, len(s.m))
	for _, o := range s.m {
		all = append(all, o)
	}
	sortOverrides(all)
	s.onChange(all)
}

type overrideKey struct {
	kind OverrideKind
	name string // the schedule for ForceClosed; "" for ForceRoute
}

func keyOf(o Override) overrideKey {
	if o.Kind == ForceRoute {
		return overrideKey{kind: ForceRoute}
	}
	return overrideKey{o.Kind, o.Schedule}
}

// Set puts o in force, replacing the override of the same kind (and schedule), which it
// returns with replaced true.
func (s *Overrides) Set(o Override) (prev Override, replaced bool, err error) {
	if err := o.Check(); err != nil {
		return Override{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[overrideKey]Override)
	}
	k := keyOf(o)
	prev, replaced = s.m[k]
	s.m[k] = o
	s.changed()
	return prev, replaced, nil
}

// Clear removes the ForceRoute override (kind ForceRoute, schedule "") or the ForceClosed
// override of schedule, returning it; ok is false if there was none.
func (s *Overrides) Clear(kind OverrideKind, schedule string) (o Override, ok bool) {
	k := overrideKey{kind, schedule}
	if kind == ForceRoute {
		k.name = ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok = s.m[k]
	delete(s.m, k)
	if ok {
		s.changed()
	}
	return o, ok
}

// Replace puts the set os in force in place of the overrides set (another node of the
// cluster changed them), without telling OnChange; ill-formed ones are skipped.
func (s *Overrides) Replace(os []Override) {
	m := make(map[overrideKey]Override, len(os))
	for _, o := range os {
		if o.Check() == nil {
			m[keyOf(o)] = o
		}
	}
	s.mu.Lock()
	s.m = m
	s.mu.Unlock()
}

// Snapshot returns the overrides set, ForceRoute first and then by schedule. Expired ones
// are included (Route ignores them); Expire removes them.
func (s *Overrides) Snapshot() []Override {
	s.mu.Lock()
	out := make([]Override, 0, len(s.m))
	for _, o := range s.m {
		out = append(out, o)
	}
	s.mu.Unlock()
	sortOverrides(out)
	return out
}

// sortOverrides puts ForceRoute first and then the rest by schedule.
func sortOverrides(os []Override) {
	slices.SortFunc(os, func(a, b Override) int {
		if c := strings.Compare(string(b.Kind), string(a.Kind)); c != 0 {
			return c // "route" before "closed"
		}
		return strings.Compare(a.Name(), b.Name())
	})
}

// Active returns the overrides in force at now, in Snapshot's order.
func (s *Overrides) Active(now time.Time) []Override {
	all := s.Snapshot()
	return slices.DeleteFunc(all, func(o Override) bool { return !o.ActiveAt(now) })
}

// Expire removes the overrides that ended by now and returns them.
func (s *Overrides) Expire(now time.Time) []Override {
	var gone []Override
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, o := range s.m {
		if !o.ActiveAt(now) {
			gone = append(gone, o)
			delete(s.m, k)
		}
	}
	if len(gone) > 0 {
		s.changed()
	}
	return gone
}
