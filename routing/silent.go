package routing

import "time"

// Why a silent call is not routed as urgent (Decision.Demoted, Attrs.Demoted).
const (
	// DemotedNoRTP: no RTP packet ever arrived from the caller. A phone sends RTP from the
	// answer on, comfort noise included, even while its user says nothing; a call that
	// sends none is a script, or a phone whose audio cannot reach us.
	DemotedNoRTP = "no_rtp"
	// DemotedSource: the call's (untrusted) source address has lately sent several calls
	// without RTP.
	DemotedSource = "source"
)

// DemotedPriority is the queue priority of a call demoted for its source: below every
// route's (routes' priorities are 0 or more), so it is rung only when no other caller
// waits, and still reaches a person.
const DemotedPriority = -1

// Silent is what is known of a call when its menus end: the silent-call policy's inputs.
type Silent struct {
	// NoInput is true when the caller pressed no key: the menus' no_input action routed the
	// call, as urgent in the default menus (a caller who cannot speak must reach a person).
	NoInput bool
	// NoRTP is true when no RTP packet ever arrived from the caller.
	NoRTP bool
	// SourceFlooding is true when the call's source is not trusted and sent several calls
	// without RTP lately (security.no_rtp_calls within security.no_rtp_window).
	SourceFlooding bool
}

// Demotion applies the silent-call policy: "" (route the call as its menus say),
// DemotedNoRTP or DemotedSource. A caller who pressed a key chose their reason and is
// never demoted; a silent caller whose phone sends RTP keeps the urgency its menus gave,
// unless the source flooded; a silent call without any RTP is routed as though no reason
// was chosen.
func (s Silent) Demotion() string {
	switch {
	case !s.NoInput:
		return ""
	case s.SourceFlooding:
		return DemotedSource
	case s.NoRTP:
		return DemotedNoRTP
	}
	return ""
}

// routeDemoted routes a demoted call (a.Demoted set): as though no reason was chosen, so
// routes on a reason (help_now) do not match it; a call demoted for its source also goes
// behind every other caller in its queue.
func (t *Table) routeDemoted(a Attrs, now time.Time, st State) Decision {
	why := a.Demoted
	a.Demoted, a.Reason = "", ""
	d := t.Route(a, now, st)
	d.Demoted = why
	if why == DemotedSource && d.Kind() == "queue" {
		d.Priority = DemotedPriority
	}
	d.Explain = append(d.Explain, "silent call demoted ("+why+"): routed without its reason")
	return d
}
