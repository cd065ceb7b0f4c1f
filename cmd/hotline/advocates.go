package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hotline-project/hotline/admin"
	"github.com/hotline-project/hotline/callflow"
	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/records"
	"github.com/hotline-project/hotline/sip"
)

// The adapters between the SIP server, the media bridge, the records and the call flow.

// sipLeg is a SIP call as the flow's Leg: sip plays any Audio, the flow plays prompts.
type sipLeg struct{ *sip.Call }

func (l sipLeg) Play(ctx context.Context, p *prompts.Prompt) error { return l.Call.Play(ctx, p) }

// sipDialer places the flow's outbound legs through the SIP server.
type sipDialer struct{ srv func() *sip.Server }

func (d sipDialer) Dial(ctx context.Context, to callflow.Dest) (callflow.Leg, error) {
	c, err := d.srv().Dial(ctx, sip.DialRequest{
		Target: to.URI, SendTo: to.SendTo, Transport: to.Transport, Line: to.Line,
		FromUser: "hotline", FromDisplay: "Hotline",
	})
	if err != nil {
		for _, e := range []struct{ sip, flow error }{
			{sip.ErrBusy, callflow.ErrBusy}, {sip.ErrRejected, callflow.ErrRejected}, {sip.ErrNoAnswer, callflow.ErrNoAnswer},
		} {
			if errors.Is(err, e.sip) {
				return nil, fmt.Errorf("%w: %w", e.flow, err)
			}
		}
		return nil, err
	}
	return sipLeg{c}, nil
}

// sipContacts gives an advocate's registered phones, as the SIP server's registrar has them.
type sipContacts struct{ srv func() *sip.Server }

func (s sipContacts) Contacts(id string) []callflow.Dest {
	var ds []callflow.Dest
	for _, b := range s.srv().Contacts(id) {
		ds = append(ds, callflow.Dest{URI: b.Contact, SendTo: b.Source.String(), Transport: b.Transport})
	}
	return ds
}

// bridgeLegs relays media between two SIP legs.
func bridgeLegs(a, b callflow.Leg) (func(), error) {
	br, err := media.NewBridge(a.(sipLeg).Leg(), b.(sipLeg).Leg())
	if err != nil {
		return nil, err
	}
	return br.Unbridge, nil
}

// callRecorder begins records through a records.Recorder (nil keeps none).
type callRecorder struct{ r *records.Recorder }

func (c callRecorder) Begin(callID, line, caller string, start time.Time) callflow.Record {
	return c.r.Begin(callID, line, caller, start)
}

// handleCall hands an answered caller's call to the flow; srv() (the server, once built)
// screens silent calls (sip.Server.ScreenSilent).
func handleCall(f *callflow.Flow, srv func() *sip.Server) sip.Handler {
	return func(ctx context.Context, c *sip.Call) {
		s := srv()
		f.Handle(ctx, callflow.Inbound{ID: c.ID, Line: c.Line, Caller: c.Caller(), Arrived: c.Arrived, Leg: sipLeg{c},
			Screen: func() (bool, bool) { return s.ScreenSilent(c) }})
	}
}

// feature changes an advocate's state by a code dialled from their phone.
func feature(f *callflow.Flow) func(context.Context, string, string) error {
	return func(ctx context.Context, id, code string) error {
		err := f.Feature(ctx, id, code)
		if errors.Is(err, callflow.ErrUnknownFeature) {
			return sip.ErrUnknownFeature
		}
		return err
	}
}

// featureCall plays the confirmation of a feature code to the advocate's phone.
func featureCall(f *callflow.Flow) sip.Handler {
	return func(ctx context.Context, c *sip.Call) { f.FeatureCall(ctx, sipLeg{c}, c.Advocate, c.Feature) }
}

// advocatesAPI is the admin API's view of the advocates.
type advocatesAPI struct{ f *callflow.Flow }

func (a advocatesAPI) Snapshot() (time.Time, queue.Snapshot) { return a.f.Advocates() }

func (a advocatesAPI) SetState(id, state, reason string) (queue.AdvocateSnapshot, error) {
	s, err := a.f.SetState(id, state, reason)
	switch {
	case errors.Is(err, callflow.ErrUnknownAdvocate):
		return s, fmt.Errorf("%w: %w", admin.ErrUnknownAdvocate, err)
	case err != nil:
		return s, fmt.Errorf("%w: %w", admin.ErrBadState, err)
	}
	return s, nil
}

var _ admin.Advocates = advocatesAPI{}
