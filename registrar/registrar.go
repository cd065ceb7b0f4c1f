// Package registrar keeps the SIP registrations of advocates' phones (RFC 3261 §10.3): for
// each address of record (an advocate id) the contacts where that advocate's phones can be
// reached, each with its own expiry. It is pure: the SIP layer authenticates and parses the
// REGISTER, and time is an argument.
//
// Register and Expire return Events when an advocate comes online (their first binding) or
// goes offline (their last binding removed or lapsed), so the queue engine can be told.
// "Online" means exactly "has stored bindings": an event is returned on each change of that,
// and on nothing else.
package registrar

import (
	"errors"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"
)

// Defaults for Options.
const (
	DefaultMinExpires = 60 * time.Second
	// DefaultMaxExpires is short for a registrar because a phone that died is shown
	// online until its binding lapses, which should take minutes, not an hour. (Bindings
	// survive a restart through OnChange and Restore: package state.)
	DefaultMaxExpires  = 10 * time.Minute
	DefaultExpires     = 10 * time.Minute
	DefaultMaxContacts = 10
)

// Errors Register returns; none changes any binding.
var (
	// ErrIntervalTooBrief means a contact asked for a non-zero expiry below MinExpires:
	// answer 423 Interval Too Brief with Min-Expires.
	ErrIntervalTooBrief = errors.New("registrar: interval too brief")
	// ErrOutOfOrder means a binding was last updated by a request with the same Call-ID and
	// a CSeq at least as high (RFC 3261 §10.3 step 7).
	ErrOutOfOrder = errors.New("registrar: out of order cseq")
	// ErrInvalidWildcard means "Contact: *" came with other contacts or without Expires: 0.
	ErrInvalidWildcard = errors.New("registrar: contact * needs expires 0 and no other contact")
	// ErrTooManyContacts means the address of record would have more than MaxContacts.
	ErrTooManyContacts = errors.New("registrar: too many contacts")
)

// Contact is one Contact header value of a REGISTER.
type Contact struct {
	// URI is the contact address; bindings of an address of record are keyed by it, so the
	// SIP layer should write it the same way each time (its canonical form).
	URI string
	// Expires is the contact's expires parameter in seconds, or -1 when it has none.
	Expires int
}

// Request is an authenticated REGISTER.
type Request struct {
	AOR       string // the advocate id
	CallID    string
	CSeq      uint32
	Contacts  []Contact
	Wildcard  bool // Contact: *
	Expires   int  // the Expires header in seconds, or -1 when absent
	Source    netip.AddrPort
	Transport string // udp or tcp, lowercase
	// Path is the REGISTER's Path header values in order (RFC 3327): the proxies between
	// the phone and us, the first one nearest to us.
	Path []string
}

// Binding is one registered contact.
type Binding struct {
	AOR     string
	Contact string
	// Source and Transport are where the REGISTER came from. Behind NAT the Contact names an
	// unreachable private address; requests to the phone should go to Source (for UDP,
	// where its NAT binding is open) with the Contact as Request-URI.
	Source    netip.AddrPort
	Transport string
	Expires   time.Time
	CallID    string
	CSeq      uint32
	// Path is the Path of the REGISTER that made the binding (RFC 3327): when set, requests
	// to the phone carry it as their Route set and go to its first URI, an edge proxy that
	// holds the phone's flow, instead of to Source.
	Path []string `json:",omitempty"`
}

// ExpiresIn returns the seconds left at now, rounded up, for the response's expires.
func (b Binding) ExpiresIn(now time.Time) int {
	d := b.Expires.Sub(now)
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// Event tells that an advocate came online or went offline.
type Event struct {
	AOR    string
	Online bool
}

// Options configure a Registrar; zero values take the defaults.
type Options struct {
	MinExpires     time.Duration // shorter non-zero expiries are refused (423)
	MaxExpires     time.Duration // longer ones are cut to this
	DefaultExpires time.Duration // when neither the contact nor the request says
	MaxContacts    int           // bindings per address of record
	// OnChange, if set, is given an address of record's bindings after each change to
	// them (none when all are gone), in the order of the changes. It is called with the
	// registrar's lock held: it must not block or call back.
	OnChange func(aor string, bindings []Binding)
}

// Registrar holds the bindings. It is safe for concurrent use.
type Registrar struct {
	opts Options

	mu       sync.Mutex
	bindings map[string][]Binding // by AOR; never an empty slice
	count    int
}

// New returns an empty Registrar.
func New(o Options) *Registrar {
	if o.MinExpires <= 0 {
		o.MinExpires = DefaultMinExpires
	}
	if o.MaxExpires <= 0 {
		o.MaxExpires = DefaultMaxExpires
	}
	if o.MaxExpires < o.MinExpires {
		o.MaxExpires = o.MinExpires
	}
	if o.DefaultExpires <= 0 {
		o.DefaultExpires = DefaultExpires
	}
	o.DefaultExpires = min(max(o.DefaultExpires, o.MinExpires), o.MaxExpires)
	if o.MaxContacts <= 0 {
		o.MaxContacts = DefaultMaxContacts
	}
	return &Registrar{opts: o, bindings: map[string][]Binding{}}
}

// MinExpires returns the shortest non-zero expiry accepted, for Min-Expires.
func (r *Registrar) MinExpires() time.Duration { return r.opts.MinExpires }

// Register applies req at now, all or nothing, and returns the address of record's bindings
// afterwards (for the 200 OK) and the event, if any, it caused.
func (r *Registrar) Register(now time.Time, req Request) ([]Binding, []Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.bindings[req.AOR]
	next := make([]Binding, 0, len(old)+len(req.Contacts))
	for _, b := range old {
		if b.Expires.After(now) {
			next = append(next, b)
		}
	}
	if req.Wildcard {
		if len(req.Contacts) > 0 || req.Expires != 0 {
			return nil, nil, ErrInvalidWildcard
		}
		for _, b := range next {
			if b.CallID == req.CallID && req.CSeq <= b.CSeq {
				return nil, nil, ErrOutOfOrder
			}
		}
		next = next[:0]
	}
	for _, c := range req.Contacts {
		secs := c.Expires
		if secs < 0 {
			secs = req.Expires
		}
		exp := r.opts.DefaultExpires
		if secs >= 0 {
			exp = time.Duration(min(secs, 1<<31)) * time.Second
		}
		if exp > 0 && exp < r.opts.MinExpires {
			return nil, nil, ErrIntervalTooBrief
		}
		exp = min(exp, r.opts.MaxExpires)
		i := slices.IndexFunc(next, func(b Binding) bool { return b.Contact == c.URI })
		if i >= 0 && next[i].CallID == req.CallID && req.CSeq <= next[i].CSeq {
			return nil, nil, ErrOutOfOrder
		}
		if exp == 0 {
			if i >= 0 {
				next = slices.Delete(next, i, i+1)
			}
			continue
		}
		b := Binding{AOR: req.AOR, Contact: c.URI, Source: req.Source, Transport: req.Transport,
			Expires: now.Add(exp), CallID: req.CallID, CSeq: req.CSeq, Path: slices.Clone(req.Path)}
		if i >= 0 {
			next[i] = b
		} else {
			next = append(next, b)
		}
	}
	if len(next) > r.opts.MaxContacts {
		return nil, nil, ErrTooManyContacts
	}
	ev := r.set(req.AOR, old, next)
	return slices.Clone(next), ev, nil
}

// set stores next as aor's bindings (old being the stored ones) and returns the event.
func (r *Registrar) set(aor string, old, next []Binding) []Event {
	if r.opts.OnChange != nil {
		r.opts.OnChange(aor, slices.Clone(next))
	}
	return r.store(aor, old, next)
}

// store keeps next as aor's bindings (old being the stored ones), without calling
// OnChange, and returns the event, if any.
func (r *Registrar) store(aor string, old, next []Binding) []Event {
	r.count += len(next) - len(old)
	if len(next) == 0 {
		delete(r.bindings, aor)
	} else {
		r.bindings[aor] = next
	}
	switch {
	case len(old) == 0 && len(next) > 0:
		return []Event{{AOR: aor, Online: true}}
	case len(old) > 0 && len(next) == 0:
		return []Event{{AOR: aor, Online: false}}
	}
	return nil
}

// Restore puts back bindings kept across a restart, dropping those lapsed at now, without
// calling OnChange, and returns the online events (ordered by AOR) for the addresses of
// record that had none.
func (r *Registrar) Restore(now time.Time, bindings []Binding) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var evs []Event
	for _, b := range bindings {
		if !b.Expires.After(now) || b.AOR == "" || b.Contact == "" {
			continue
		}
		old := r.bindings[b.AOR]
		if slices.ContainsFunc(old, func(o Binding) bool { return o.Contact == b.Contact }) {
			continue
		}
		if len(old) == 0 {
			evs = append(evs, Event{AOR: b.AOR, Online: true})
		}
		r.bindings[b.AOR] = append(old, b)
		r.count++
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].AOR < evs[j].AOR })
	return evs
}

// Replace sets aor's bindings to those of bindings not lapsed at now (another node of
// the cluster registered them), without calling OnChange, and returns the event, if any.
func (r *Registrar) Replace(now time.Time, aor string, bindings []Binding) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var next []Binding
	for _, b := range bindings {
		if b.Expires.After(now) && b.AOR == aor && b.Contact != "" {
			next = append(next, b)
		}
	}
	return r.store(aor, r.bindings[aor], next)
}

// Expire removes the bindings lapsed at now and returns an offline event for each address of
// record left with none, ordered by AOR.
func (r *Registrar) Expire(now time.Time) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var evs []Event
	for aor, old := range r.bindings {
		next := make([]Binding, 0, len(old))
		for _, b := range old {
			if b.Expires.After(now) {
				next = append(next, b)
			}
		}
		if len(next) != len(old) {
			evs = append(evs, r.set(aor, old, next)...)
		}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].AOR < evs[j].AOR })
	return evs
}

// Bindings returns aor's bindings that have not lapsed at now, in the order they were
// first registered.
func (r *Registrar) Bindings(aor string, now time.Time) []Binding {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Binding
	for _, b := range r.bindings[aor] {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	return out
}

// Count returns the number of stored bindings, over all addresses of record.
func (r *Registrar) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// Online reports whether aor has stored bindings (the state the events describe).
func (r *Registrar) Online(aor string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bindings[aor]) > 0
}
