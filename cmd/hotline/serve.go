package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/hotline-project/hotline/admin"
	"github.com/hotline-project/hotline/callflow"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/console"
	"github.com/hotline-project/hotline/logs"
	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/metrics"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/records"
	"github.com/hotline-project/hotline/registrar"
	"github.com/hotline-project/hotline/routing"
	"github.com/hotline-project/hotline/sip"
	"github.com/hotline-project/hotline/sip/defence"
	"github.com/hotline-project/hotline/sip/digest"
	"github.com/hotline-project/hotline/sip/gate"
	"github.com/hotline-project/hotline/sip/sdp"
	"github.com/hotline-project/hotline/state"
)

// Addrs are the addresses the server is bound to, and its controls (what main's signal
// handler calls: SIGHUP reloads, the first SIGTERM drains).
type Addrs struct {
	SIPUDP, SIPTCP, HTTP string
	// SIPTLS is the SIP over TLS address; "" when sip.tls is off.
	SIPTLS string
	// Cluster is the node's cluster port (state.cluster.bind, port chosen); "" alone.
	Cluster string
	// Reload loads the configuration file again; on error the running one stays in force.
	Reload func() error
	// Drain stops taking new calls (503 to INVITE and OPTIONS, /readyz not ready) and stops
	// the server when the calls in progress have ended or the drain timeout passes.
	Drain func()
}

// serveFlags are serve's command line.
type serveFlags struct {
	cfgPath, sipAddr, httpAddr, logFormat, logLevel, pprofAddr string
	nodeID, clusterBind, join                                  string // state.cluster
}

// parseServeFlags reads serve's command line.
func parseServeFlags(args []string, stderr io.Writer) (serveFlags, error) {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.cfgPath, "config", "", "configuration `file` (default: the embedded configuration; see 'hotline config')")
	fs.StringVar(&f.sipAddr, "sip", "", "SIP listen `address` for UDP and TCP (overrides sip.listen)")
	fs.StringVar(&f.httpAddr, "http", "", "HTTP listen `address` for /metrics, /healthz, /readyz (overrides http.listen)")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.pprofAddr, "pprof", "", "serve Go profiling (net/http/pprof) on this `address`, such as 127.0.0.1:6060; off by default, and never on the metrics address: profiles reveal internals")
	fs.StringVar(&f.nodeID, "node-id", "", "this node's `id` in a cluster (overrides state.cluster.node_id)")
	fs.StringVar(&f.clusterBind, "cluster-bind", "", "this node's cluster `address` IP:port, for raft and forwarded writes (overrides state.cluster.bind)")
	fs.StringVar(&f.join, "join", "", "comma-separated cluster `addresses` of members to join through (overrides state.cluster.join)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	return f, nil
}

// overrides applies the flags that override the configuration file, at start and at every
// reload.
func (f serveFlags) overrides(c *config.Config) {
	if f.sipAddr != "" {
		c.SIP.Listen = f.sipAddr
	}
	if f.httpAddr != "" {
		c.HTTP.Listen = f.httpAddr
	}
	if f.nodeID != "" {
		c.State.Cluster.NodeID = f.nodeID
	}
	if f.clusterBind != "" {
		c.State.Cluster.Bind = f.clusterBind
	}
	if f.join != "" {
		c.State.Cluster.Join = strings.Split(f.join, ",")
	}
}

// server is what serve wires together, step by step (serveCmd).
type server struct {
	flags   serveFlags
	cfg     *config.Config
	log     *slog.Logger
	started time.Time
	undo    *cleanups

	reg   *prometheus.Registry
	m     *metrics.Metrics
	im    *metrics.IVR
	qm    *metrics.Queues
	stats *console.Stats // today's counts per queue, for the console
	snap  *callflow.Snapshot
	live  atomic.Pointer[callflow.Snapshot]
	token string // the admin API's

	ls              listeners
	rec             *records.Recorder
	health          *metrics.Health
	sched           *media.Scheduler
	ports           *media.Ports
	overload        *sip.Overload // overload control: sheds new calls it cannot set up in time
	overloadMetrics *metrics.Overload
	advertise       netip.Addr
	overrides       *routing.Overrides
	eng             *queue.Engine
	flow            *callflow.Flow
	srv             *sip.Server
	gateLimits      gate.Limits
	limiter         *defence.Limiter
	dur             *durable             // what survives a restart (state.go); nil: nothing
	regs            *registrar.Registrar // the per-source defences, which the console also reads
	phones          *browserPhones       // the advocates' phones in the console's pages
	sups            *supervisions        // supervisors listening from the console

	// stop ends the server: at once on ctx (a second SIGTERM, or the caller of run), or
	// when a drain has finished. g runs its parts under gctx.
	stop context.CancelFunc
	g    *errgroup.Group
	gctx context.Context
}

func serveCmd(ctx context.Context, args []string, stderr io.Writer, ready func(Addrs)) error {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	cfg, err := callflow.LoadConfig(f.cfgPath)
	if err != nil {
		return err
	}
	f.overrides(cfg)
	for _, w := range digestWarnings(cfg) {
		log.Warn("an advocate's digest challenge differs from unknown names'", "problem", w)
	}
	// undo closes what serve opened, last first, when it returns: on an error before
	// the server runs, and after it has stopped.
	var undo cleanups
	defer undo.run()
	s := &server{flags: f, cfg: cfg, log: log, started: time.Now(), undo: &undo}
	for _, step := range []func(context.Context) error{
		s.buildMetrics, s.listen, s.openRecords, s.openDurable, s.buildMedia, s.buildQueues, s.buildSIP,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return s.run(ready)
}

// buildMetrics makes the metrics registry, the logger that counts what it suppresses, the
// routing snapshot the server starts with, and reads the admin API's token.
func (s *server) buildMetrics(context.Context) error {
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// A line repeated beyond the limits is counted, not written (issue 14: a flood of
	// RFC 4733 events once wrote 30,100 warnings in 3 s).
	s.log = slog.New(logs.NewHandler(s.log.Handler(), logs.Options{OnSuppressed: metrics.NewLogs(s.reg).Suppressed}))
	s.m = metrics.New(s.reg)
	s.im = metrics.NewIVR(s.reg)
	snap, err := callflow.Build(s.cfg, s.started, s.im.Selected)
	if err != nil {
		return err
	}
	s.snap = snap
	s.live.Store(snap)
	s.token, err = admin.LoadToken(s.cfg.Admin.TokenFile)
	return err
}

// listen binds the server's ports (listenAll).
func (s *server) listen(context.Context) error {
	ls, err := listenAll(s.cfg, s.undo)
	s.ls = ls
	return err
}

// openRecords opens the call records, and the health check that reports their store. They
// are opened only once the ports are ours: opening them marks this node's calls left in
// progress as interrupted, which must not happen to a running server's calls when a second
// one is started by mistake (issue 13).
func (s *server) openRecords(ctx context.Context) error {
	recReg := prometheus.Registerer(s.reg)
	if s.cfg.Records.Driver == "none" {
		recReg = nil // no store, no records metrics (nor an alert about a store that is not there)
	}
	rm := metrics.NewRecords(recReg, func() records.Stats { return s.rec.Stats() })
	rec, err := openRecords(s.cfg, s.log, rm.StoreError)
	if err != nil {
		return err
	}
	s.rec = rec
	*s.undo = append(*s.undo, func() {
		// After the calls have ended: their records are written, or spooled.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := rec.Close(cctx); err != nil {
			s.log.Error("call records not all written at stop", "err", err)
		}
	})
	s.health = &metrics.Health{}
	s.health.SetDetail(func() string {
		cl := s.dur.readyDetail()
		if rec == nil {
			return cl
		}
		d := metrics.RecordsDetail(rec.Stats())
		if cl != "" && d != "" {
			return cl + "\n" + d
		}
		return cl + d
	})
	return nil
}

// openDurable opens what survives a restart (package state): registrations, advocates'
// pauses and logouts, overrides, callers' kept places. It closes before the records do.
func (s *server) openDurable(ctx context.Context) error {
	sm := state.NewMetrics(s.reg, func() *state.Store {
		if s.dur == nil {
			return nil
		}
		return s.dur.store
	})
	cm := func() *clusterMetrics {
		return newClusterMetrics(s.reg, func() *state.Store {
			if s.dur == nil {
				return nil
			}
			return s.dur.store
		})
	}
	dur, err := openState(ctx, s.cfg, s.log, sm, cm)
	if err != nil {
		return err
	}
	s.dur = dur
	*s.undo = append(*s.undo, func() { dur.close() })
	return nil
}

// buildMedia makes the RTP scheduler and ports, and their metrics.
func (s *server) buildMedia(context.Context) error {
	bind, advertise, err := mediaAddrs(s.cfg)
	if err != nil {
		return err
	}
	s.advertise = advertise
	ov := newOverload(s.cfg.SIP.Overload)
	s.overload = ov
	s.overloadMetrics = metrics.NewOverload(s.reg, func() metrics.OverloadState {
		st := ov.Stats()
		return metrics.OverloadState{Pending: st.Pending, Admit: st.Admit, Active: st.Active, Over: st.Over}
	})
	sched := media.NewScheduler(media.SchedulerOptions{Logger: s.log, OnLateness: func(late time.Duration) {
		s.m.ObservePacing(late)
		ov.ObserveLateness(late)
	}})
	s.sched = sched
	s.ports = media.NewPorts(bind, s.cfg.Media.PortMin, s.cfg.Media.PortMax)
	if s.phones, err = newBrowserPhones(s.cfg, sched, s.ports, bind, advertise, s.log); err != nil {
		return err
	}
	s.m.WatchRTP(func() metrics.RTPTotals {
		t := sched.Stats()
		return metrics.RTPTotals{Sent: t.FramesSent, Received: t.PacketsReceived,
			DroppedForeign: t.DroppedForeign, DroppedInvalid: t.DroppedInvalid, DroppedLate: t.FramesSkipped,
			DroppedLearning: t.DroppedLearning, LearnResets: t.LearnResets}
	})
	return nil
}

// buildQueues makes the queue engine and the call flow that drives it, and the errgroup
// they run in.
func (s *server) buildQueues(ctx context.Context) error {
	s.overrides = &routing.Overrides{}
	live, overrides := &s.live, s.overrides
	s.qm = metrics.NewQueues(s.reg, func() queue.Snapshot { return s.eng.Snapshot(time.Now()) },
		func(name string) bool { return live.Load().Table.QueueOpen(name, time.Now(), overrides.Snapshot()) },
		func(name string) time.Duration { return live.Load().Settings(name).ServiceLevel })
	// Today's counts per queue for the console's wallboard; its events wake the console.
	s.stats = console.NewStats(time.Now, func(name string) time.Duration { return live.Load().Settings(name).ServiceLevel })
	eng, err := queue.New(callflow.QueueConfig(s.cfg), queue.WithLogger(s.log),
		queue.WithObserver(withState(console.Observers{s.qm, s.stats}, s.dur)))
	if err != nil {
		return fmt.Errorf("queues: %w", err)
	}
	s.eng = eng
	if s.dur != nil {
		s.dur.eng = func() *queue.Engine { return eng }
	}
	s.regs = registrar.New(registrar.Options{OnChange: s.dur.registrations()})
	sctx, stop := context.WithCancel(ctx)
	s.stop = stop
	*s.undo = append(*s.undo, stop)
	s.g, s.gctx = errgroup.WithContext(sctx)
	sipSrv := func() *sip.Server { return s.srv }
	keys, err := callbackKeys(s.cfg, s.log)
	if err != nil {
		return err
	}
	cbStore, pendingCallbacks := s.dur.callbacks(time.Now())
	dialer, contacts := phoneDialer{sipDialer{sipSrv}, s.phones}, phoneContacts{sipContacts{sipSrv}, s.phones}
	s.flow = callflow.New(callflow.Options{
		Engine:     eng,
		Live:       live,
		Overrides:  overrides,
		Dialer:     dialer,
		Contacts:   contacts,
		Bridge:     bridgeLegs,
		Records:    callRecorder{s.rec},
		Places:     s.dur.places(time.Now()),
		Queues:     s.qm,
		Routing:    metrics.NewRouting(s.reg, func() []routing.Override { return overrides.Active(time.Now()) }),
		Menus:      s.im,
		Safety:     metrics.NewSafety(s.reg),
		CallerHash: callerHash(s.rec),
		// The advocates' mid-call features (interpreters, 911, partners) mix on the one
		// pacing scheduler.
		Mixer:       mixer(s.sched, s.log),
		Conferences: metrics.NewConferences(s.reg),
		// Safe callbacks: numbers sealed with keys, kept in the state log.
		CallbackStore: cbStore, Sealer: keys,
		CallbackMetrics: metrics.NewCallbacks(s.reg, queueNames(s.cfg), func() int { return s.flow.PendingCallbacks() }),
		Logger:          s.log,
		// A fatal error stops the server through gctx: its calls are cut off then too, and
		// recorded as shutdown_fatal with the error (an orderly stop's cause is Canceled).
		Stopping: func() bool { return s.gctx.Err() != nil },
		Claim:    s.dur.claim(),
	})
	s.flow.RestoreCallbacks(pendingCallbacks)
	s.phones.flow = s.flow.Presence
	s.sups = &supervisions{flow: s.flow, live: live, dialer: dialer, contacts: contacts, log: s.log, m: map[string]*supervision{}}
	return nil
}

// newAuth is digest authentication against the advocates' accounts of the running
// configuration.
func (s *server) newAuth() (*digest.Authenticator, error) {
	live := &s.live
	auth, err := digest.New(digest.Options{
		Realm:      s.cfg.SIP.Realm,
		Algorithms: s.cfg.SIP.DigestAlgorithms,
		Lookup: func(id string) (digest.HA1, bool) {
			h, ok := live.Load().Accounts[id]
			return h, ok
		},
		Decoy: func() digest.HA1 { return live.Load().Decoy },
	})
	if err != nil {
		return nil, fmt.Errorf("sip auth: %w", err)
	}
	return auth, nil
}

// buildSIP makes the SIP server: digest authentication, the per-source defences and the
// untrusted sources' budget, the gate's limits, and the call flow's handlers.
func (s *server) buildSIP(context.Context) error {
	cfg, live := s.cfg, &s.live
	auth, err := s.newAuth()
	if err != nil {
		return err
	}
	limiter, err := newLimiter(cfg, s.log)
	if err != nil {
		return err
	}
	s.limiter = limiter
	budget, err := newBudget(cfg)
	if err != nil {
		return err
	}
	defences := metrics.NewDefences(s.reg, func() int { return limiter.BannedSources(time.Now()) })
	metrics.WatchBudget(s.reg, budget.Counts)
	conns := metrics.NewConns(s.reg, func(transport string) int {
		if s.srv == nil {
			return 0
		}
		return s.srv.OpenConnections(transport)
	})
	s.gateLimits = gate.Limits{
		TLSHandshakeTimeout:     cfg.SIP.TLS.HandshakeTimeout,
		TCPFirstRequestTimeout:  cfg.Security.FirstRequestTimeout,
		MaxConnections:          maxConnections(cfg, openFileLimit(), s.log),
		MaxConnectionsPerSource: cfg.Security.MaxConnectionsPerSource,
	}
	sipSrv := func() *sip.Server { return s.srv }
	s.srv, err = sip.NewServer(sip.Options{
		Lines: func(dialled string) (string, bool) {
			l, ok := live.Load().Config.LookupLine(dialled)
			if !ok {
				return "", false
			}
			return l.Name, true
		},
		LineSRTP: func(name string) sdp.SRTPPolicy {
			return lineSRTP(live.Load().Config, name)
		},
		Handler:           handleCall(s.flow, sipSrv),
		UserAgent:         cfg.SIP.UserAgent,
		AckTimeout:        cfg.SIP.AckTimeout,
		AnswerDelay:       cfg.SIP.AnswerDelay,
		MaxCalls:          cfg.CallLimits().MaxCalls,
		Scheduler:         s.sched,
		Ports:             s.ports,
		AdvertiseAddr:     s.advertise,
		InactivityTimeout: cfg.Media.InactivityTimeout,
		InbandDTMF:        inbandMode(cfg.Media.InbandDTMF),
		Observer:          callObserver{Metrics: s.m, rec: s.rec},
		Logger:            s.log,
		Auth:              auth,
		Registrar:         s.regs,
		Presence:          s.phones.sipPresence,
		Feature:           feature(s.flow, s.dur),
		FeatureHandler:    featureCall(s.flow),
		Defences:          limiter,
		DefenceObserver:   defences,
		ConnObserver:      conns,
		Budget:            budget,
		UnackedTimeout:    cfg.Security.UnackedTimeout,
		GateLimits:        s.gateLimits,
		TLS:               s.ls.sipTLS.server,
		TLSClient:         s.ls.sipTLS.client,
		Overload:          s.overload,
		OverloadObserver:  s.overloadMetrics,
	})
	if err != nil {
		return err
	}
	if s.dur != nil {
		// Other nodes' changes are applied from now on; restore then reads a state that
		// includes every change before (an entry in between is applied twice, harmlessly).
		s.dur.wire(s.gctx, &clusterRuntime{reg: s.regs, ov: s.overrides, flow: s.flow, places: s.dur.mem,
			presence: s.phones.sipPresence})
	}
	s.dur.restore(time.Now(), s.regs, s.overrides, s.phones.sipPresence)
	s.m.Registrations(s.regs.Count()) // restored bindings count before any phone registers
	return nil
}

// run serves until the server stops: SIP, RTP, the call flow, HTTP (metrics, health, the
// admin API) and, when asked, pprof. It calls ready with the bound addresses and the
// controls once everything is up.
func (s *server) run(ready func(Addrs)) error {
	g, gctx, log := s.g, s.gctx, s.log
	rl := &callflow.Reloader{Path: s.flags.cfgPath, Overrides: s.flags.overrides, Flow: s.flow,
		Metrics: metrics.NewReloads(s.reg, s.started), OnSelect: s.im.Selected, Logger: log}
	httpSrv, err := s.httpServer(rl)
	if err != nil {
		return err
	}
	dr := &callflow.Drainer{Server: drainable{s.srv, s.flow}, SetReady: s.health.SetReady, Stop: s.stop, Timeout: s.cfg.SIP.DrainTimeout, Logger: log}
	s.rec.SetStopping(func() error { return context.Cause(gctx) })
	g.Go(func() error { return s.sched.Run(gctx) })
	g.Go(func() error { watchCPUWaits(gctx, s.overload); return nil })
	g.Go(func() error { return s.flow.Run(gctx) })
	g.Go(func() error { return s.flow.RunCallbacks(gctx) })
	g.Go(func() error {
		return s.srv.ServeListeners(gctx, sip.Listeners{UDP: s.ls.udp, TCP: s.ls.tcp, TLS: s.ls.sipTLS.ln})
	})
	g.Go(func() error {
		if err := httpSrv.Serve(s.ls.http); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	if s.flags.pprofAddr != "" {
		if err := servePprof(gctx, g, s.flags.pprofAddr, log); err != nil {
			s.stop()
			_ = g.Wait()
			return err
		}
	}
	g.Go(func() error {
		<-gctx.Done()
		s.health.SetReady(false)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
		defer cancel()
		return httpSrv.Shutdown(sctx)
	})

	addrs := s.ls.addrs()
	addrs.Reload, addrs.Drain = rl.Reload, dr.Drain
	if s.dur != nil && s.dur.cl != nil {
		addrs.Cluster = s.dur.store.Addr()
	}
	s.health.SetReady(true)
	log.Info("hotline listening", "sip_udp", addrs.SIPUDP, "sip_tcp", addrs.SIPTCP, "sip_tls", addrs.SIPTLS, "http", addrs.HTTP, "cluster", addrs.Cluster,
		"lines", len(s.cfg.Lines), "languages", s.snap.Prompts.Languages(), "max_connections", s.gateLimits.MaxConnections)
	if ready != nil {
		ready(addrs)
	}
	err = g.Wait()
	log.Info("hotline stopped")
	return err
}

// httpServer serves the metrics, the health checks, the admin API and the console; a state
// set through the admin API or the console is saved before the answer (durableAdmin).
func (s *server) httpServer(rl *callflow.Reloader) (*http.Server, error) {
	var recExport admin.Records // a nil *records.Recorder must stay a nil interface
	if s.rec != nil {
		recExport = s.rec
	}
	live, eng := &s.live, s.eng
	mux := http.NewServeMux()
	mux.Handle("/", metrics.Handler(s.reg, s.health))
	mux.Handle("/admin/", durableAdmin(admin.Handler(admin.Options{
		Token: s.token, Table: func() *routing.Table { return live.Load().Table }, Overrides: s.overrides, Logger: s.log,
		Advocates: advocatesAPI{s.flow, s.dur},
		State:     func() routing.State { return routing.State{Queues: eng.RoutingState(time.Now())} },
		Reload:    rl.Reload,
		Records:   recExport,
		Cluster:   s.dur.status(),
		Members:   s.dur.members(),
		Callbacks: callbacksAPI{s.flow},
	}), s.dur))
	consoleHandler, stopConsole, err := newConsole(live, s.flow, s.dur, s.limiter, s.stats, s.phones, s.sups, s.reg, s.log)
	if err != nil {
		return nil, err
	}
	mux.Handle("/console/", durableAdmin(consoleHandler, s.dur)) // a state set there is saved before the answer
	httpSrv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	httpSrv.RegisterOnShutdown(stopConsole) // the console's event streams end at shutdown
	return httpSrv, nil
}

// listeners are the server's sockets.
type listeners struct {
	sipTLS sipTLS
	udp    net.PacketConn
	tcp    net.Listener
	http   net.Listener
}

// listenAll binds SIP over TLS (when configured), UDP and TCP, and HTTP, adding each to
// undo.
func listenAll(cfg *config.Config, undo *cleanups) (listeners, error) {
	var ls listeners
	var err error
	if ls.sipTLS, err = listenSIPTLS(cfg.SIP.TLS); err != nil {
		return ls, err
	}
	if ls.sipTLS.ln != nil {
		undo.close(ls.sipTLS.ln)
	}
	if ls.udp, ls.tcp, err = listenSIP(cfg.SIP.Listen, cfg.SIP.Transports); err != nil {
		return ls, err
	}
	if ls.udp != nil {
		undo.close(ls.udp)
	}
	if ls.tcp != nil {
		undo.close(ls.tcp)
	}
	httpTLS, err := loadHTTPTLS(cfg.HTTP)
	if err != nil {
		return ls, err
	}
	if ls.http, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		return ls, fmt.Errorf("http: %w", err)
	}
	undo.close(ls.http)
	if httpTLS != nil {
		ls.http = tls.NewListener(ls.http, httpTLS) // Addr() stays the TCP listener's
	}
	return ls, nil
}

// addrs are the bound addresses.
func (ls listeners) addrs() Addrs {
	a := Addrs{HTTP: ls.http.Addr().String()}
	if ls.udp != nil {
		a.SIPUDP = ls.udp.LocalAddr().String()
	}
	if ls.tcp != nil {
		a.SIPTCP = ls.tcp.Addr().String()
	}
	if ls.sipTLS.ln != nil {
		a.SIPTLS = ls.sipTLS.ln.Addr().String()
	}
	return a
}

// mediaAddrs are the address RTP legs bind to and the one SDP advertises (the bind
// address unless media.advertise_address is set or it is unspecified).
func mediaAddrs(cfg *config.Config) (bind, advertise netip.Addr, err error) {
	if bind, err = netip.ParseAddr(cfg.Media.BindAddress); err != nil {
		return bind, advertise, fmt.Errorf("media.bind_address: %w", err)
	}
	if cfg.Media.AdvertiseAddress != "" {
		if advertise, err = netip.ParseAddr(cfg.Media.AdvertiseAddress); err != nil {
			return bind, advertise, fmt.Errorf("media.advertise_address: %w", err)
		}
	} else if !bind.IsUnspecified() {
		advertise = bind
	}
	return bind, advertise, nil
}

// sip.Server reports authentication failures and registrations to the metrics.
var _ sip.AuthObserver = (*metrics.Metrics)(nil)

// metrics.Defences counts what the per-source limits refuse.
var _ sip.DefenceObserver = (*metrics.Defences)(nil)

// newLimiter builds the per-source defences from the security section.
func newLimiter(cfg *config.Config, log *slog.Logger) (*defence.Limiter, error) {
	s := cfg.Security
	l, err := defence.New(defence.Config{
		AuthFailures: s.AuthFailures,
		AuthWindow:   s.AuthWindow,
		BanFor:       s.BanDuration,
		Rate:         s.RequestRate,
		Burst:        s.RequestBurst,
		MaxCalls:     s.MaxCallsPerSource,
		Trusted:      s.TrustedPrefixes(),
		MaxSources:   s.MaxTrackedSources,
		NoRTPCalls:   s.NoRTPCalls,
		NoRTPWindow:  s.NoRTPWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("security: %w", err)
	}
	if len(s.TrustedSources) == 0 && (s.RequestRate > 0 || s.MaxCallsPerSource > 0) {
		log.Warn("security.trusted_sources is empty: the carrier's SIP trunk is limited like any other source; list its addresses there")
	}
	return l, nil
}

// newBudget builds the untrusted sources' budget (issue 14) from the call limits.
func newBudget(cfg *config.Config) (*defence.Budget, error) {
	l := cfg.CallLimits()
	b, err := defence.NewBudget(defence.BudgetConfig{Calls: l.UntrustedCalls, Unacked: l.UnackedCalls,
		UnackedPerSource: cfg.Security.UnackedCallsPerSource})
	if err != nil {
		return nil, fmt.Errorf("security: %w", err)
	}
	return b, nil
}

func defaultConfig() []byte { return config.Default() }

// listenSIP binds the SIP transports on addr. With port 0 the UDP port is chosen first and TCP
// takes the same number, so one address serves both.
// sipReadBuffer is the SIP UDP socket's receive buffer: about 1,500 INVITEs, 200 ms of
// twice the 1,000 calls/s the server is built for (the default, 208 KiB, is 40 ms).
const sipReadBuffer = 1 << 20

func listenSIP(addr string, transports []string) (net.PacketConn, net.Listener, error) {
	want := map[string]bool{}
	for _, t := range transports {
		want[strings.ToLower(t)] = true
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("sip listen address %q: %w", addr, err)
	}
	for attempt := 0; ; attempt++ {
		var udp net.PacketConn
		p := port
		if want["udp"] {
			udp, err = net.ListenPacket("udp", addr)
			if err != nil {
				return nil, nil, fmt.Errorf("sip udp: %w", err)
			}
			if c, ok := udp.(*net.UDPConn); ok {
				// A burst waits in the socket, not dropped to be retransmitted 500 ms later;
				// the kernel caps it at net.core.rmem_max (README, Overload control).
				_ = c.SetReadBuffer(sipReadBuffer)
			}
			_, p, _ = net.SplitHostPort(udp.LocalAddr().String())
		}
		if !want["tcp"] {
			return udp, nil, nil
		}
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err == nil {
			return udp, tcp, nil
		}
		if udp != nil {
			udp.Close()
		}
		if port != "0" || attempt >= 20 {
			return nil, nil, fmt.Errorf("sip tcp: %w", err)
		}
	}
}

// cleanups is a list of things to undo, run last first.
type cleanups []func()

// close adds closing c.
func (u *cleanups) close(c io.Closer) { *u = append(*u, func() { _ = c.Close() }) }

// run undoes everything, last first. (A pointer receiver: defer undo.run() must see what
// is added after it.)
func (u *cleanups) run() {
	for i := len(*u) - 1; i >= 0; i-- {
		(*u)[i]()
	}
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}

// lineSRTP is the SRTP policy of the line named name in cfg; an unknown line (gone in a
// reload) is off.
func lineSRTP(cfg *config.Config, name string) sdp.SRTPPolicy {
	for _, l := range cfg.Lines {
		if l.Name != name {
			continue
		}
		p := sdp.SRTPPolicy{AllowInsecureSignalling: l.SRTPAllowPlainSIP}
		switch l.SRTP {
		case config.SRTPOptional:
			p.Mode = sdp.SRTPOptional
		case config.SRTPRequired:
			p.Mode = sdp.SRTPRequired
		}
		return p
	}
	return sdp.SRTPPolicy{}
}
