package main

import (
	"testing"
	"time"

	"github.com/hotline-project/hotline/registrar"
)

func TestOnlyLapsed(t *testing.T) {
	now := time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC)
	old := registrar.Binding{AOR: "ana", Contact: "sip:ana@192.0.2.1", CallID: "x", CSeq: 2, Expires: now.Add(-time.Second)}
	live := registrar.Binding{AOR: "ana", Contact: "sip:ana@192.0.2.2", CallID: "y", CSeq: 3, Expires: now.Add(time.Minute)}
	// The same binding read back from the log: no monotonic clock, another location.
	liveLog := live
	liveLog.Expires = live.Expires.In(time.FixedZone("x", 3600))
	fresh := live
	fresh.CSeq, fresh.Expires = 4, now.Add(time.Hour)
	for _, tc := range []struct {
		name       string
		prev, next []registrar.Binding
		want       bool
	}{
		{"one lapsed, gone", []registrar.Binding{old}, nil, true},
		{"a lapsed one gone, a live one kept", []registrar.Binding{old, liveLog}, []registrar.Binding{live}, true},
		{"a live one removed (unregistered)", []registrar.Binding{liveLog}, nil, false},
		{"a refresh", []registrar.Binding{liveLog}, []registrar.Binding{fresh}, false},
		{"a new one", nil, []registrar.Binding{live}, false},
		{"a lapsed one gone, another added", []registrar.Binding{old}, []registrar.Binding{live}, false},
	} {
		if got := onlyLapsed(tc.prev, tc.next, now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
