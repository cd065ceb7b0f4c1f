// Package media owns the RTP side of a call: one UDP port per call leg, a
// single pacing scheduler that sends the next 20 ms G.711 frame of every leg,
// symmetric and strict RTP (learn.go: the signalled source is learned from its
// first packet, any other only after a probation of in-sequence packets, and
// every source but the learned one is dropped), ports drawn at random from the
// range, RFC 4733 telephone-event (DTMF) detection, and the
// Bridge that relays two legs' RTP to each other (transcoding PCMU and PCMA,
// and carrying DTMF as telephone-event packets), and the Conference that mixes
// three or more (conference.go, with a jitter buffer per participant in
// jitter.go), on the same scheduler.
//
// The pieces fit together like this:
//
//	ports := media.NewPorts(bind, 10000, 20000)
//	sched := media.NewScheduler(media.SchedulerOptions{Logger: log})
//	go sched.Run(ctx)
//	leg, err := media.NewLeg(sched, ports, media.LegConfig{Remote: fromSDP, ...})
//	defer leg.Close()
//	err = leg.Play(ctx, prompt) // returns early when ctx is cancelled (barge-in)
//	br, err := media.NewBridge(leg, advocateLeg) // relay until br.Unbridge() or a leg ends
//
// Frames are never paced by a goroutine or ticker per call: the Scheduler
// runs one worker per core, and each leg is given a phase within the 20 ms
// frame and a worker, both least-loaded, so that thousands of legs are sent
// as a smooth stream instead of one burst per tick. Each leg has exactly one
// goroutine of its own, which reads its socket; a bridge relays each packet
// from that goroutine as it arrives, adding no goroutine and no pacing delay.
//
// The package knows nothing of SIP or Prometheus: the SIP layer creates legs
// from SDP and reads Done/Err to hang up; metrics read Scheduler.Stats and
// SchedulerOptions.OnLateness.
package media
