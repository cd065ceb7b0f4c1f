package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestConferences(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewConferences(reg)
	m.Conferences(1)
	m.Participants(3)
	m.Participants(-1)
	m.Joined("interpreter", "answered")
	m.Joined("emergency", "busy")
	m.Joined("emergency", "busy")
	want := `
# HELP hotline_conference_joins_total Attempts to add a party mid-call, by kind (interpreter, emergency, partner, other, supervisor, transfer) and result (answered, busy, no_answer, failed, unknown; for transfers also none_available, completed, cancelled, left).
# TYPE hotline_conference_joins_total counter
hotline_conference_joins_total{kind="emergency",result="busy"} 2
hotline_conference_joins_total{kind="interpreter",result="answered"} 1
# HELP hotline_conference_participants Legs in conferences now: callers, advocates and the parties they added.
# TYPE hotline_conference_participants gauge
hotline_conference_participants 2
# HELP hotline_conferences_active Calls whose media is mixed in a conference now (a party being added, or three or more talking).
# TYPE hotline_conferences_active gauge
hotline_conferences_active 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	NewConferences(nil).Joined("partner", "failed") // no registry: works, exports nothing
}
