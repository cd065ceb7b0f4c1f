package main

import (
	"context"
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
	"github.com/hotline-project/hotline/logs"
	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/metrics"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/records"
	"github.com/hotline-project/hotline/registrar"
	"github.com/hotline-project/hotline/routing"
	"github.com/hotline-project/hotline/sip"
	"github.com/hotline-project/hotline/sip/digest"
	"github.com/hotline-project/hotline/sip/gate"
	"github.com/hotline-project/hotline/sip/limit"
	"github.com/hotline-project/hotline/sip/sdp"
)

// Addrs are the addresses the server is bound to, and its controls (what main's signal
// handler calls: SIGHUP reloads, the first SIGTERM drains).
type Addrs struct {
	SIPUDP, SIPTCP, HTTP string
	// SIPTLS is the SIP over TLS address; "" when sip.tls is off.
	SIPTLS string
	// Reload loads the configuration file again; on error the running one stays in force.
	Reload func() error
	// Drain stops taking new calls (503 to INVITE and OPTIONS, /readyz not ready) and stops
	// the server when the calls in progress have ended or the drain timeout passes.
	Drain func()
}

func serveCmd(ctx context.Context, args []string, stderr io.Writer, ready func(Addrs)) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration `file` (default: the embedded configuration; see 'hotline config')")
	sipAddr := fs.String("sip", "", "SIP listen `address` for UDP and TCP (overrides sip.listen)")
	httpAddr := fs.String("http", "", "HTTP listen `address` for /metrics, /healthz, /readyz (overrides http.listen)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	pprofAddr := fs.String("pprof", "", "serve Go profiling (net/http/pprof) on this `address`, such as 127.0.0.1:6060; off by default, and never on the metrics address: profiles reveal internals")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	flagOverrides := func(c *config.Config) {
		if *sipAddr != "" {
			c.SIP.Listen = *sipAddr
		}
		if *httpAddr != "" {
			c.HTTP.Listen = *httpAddr
		}
	}
	cfg, err := callflow.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	flagOverrides(cfg)
	for _, w := range digestWarnings(cfg) {
		log.Warn("an advocate's digest challenge differs from unknown names'", "problem", w)
	}
	started := time.Now()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// A line repeated beyond the limits is counted, not written (issue 14: a flood of
	// RFC 4733 events once wrote 30,100 warnings in 3 s).
	log = slog.New(logs.NewHandler(log.Handler(), logs.Options{OnSuppressed: metrics.NewLogs(reg).Suppressed}))
	m := metrics.New(reg)
	im := metrics.NewIVR(reg)
	snap, err := callflow.Build(cfg, started, im.Selected)
	if err != nil {
		return err
	}
	var live atomic.Pointer[callflow.Snapshot]
	live.Store(snap)
	token, err := admin.LoadToken(cfg.Admin.TokenFile)
	if err != nil {
		return err
	}
	// undo closes what serve opened, last first, when it returns: on an error before
	// the server runs, and after it has stopped.
	var undo cleanups
	defer undo.run()
	ls, err := listenAll(cfg, &undo)
	if err != nil {
		return err
	}
	// The records are opened only once the ports are ours: opening them marks this node's
	// calls left in progress as interrupted, which must not happen to a running server's
	// calls when a second one is started by mistake (issue 13).
	var rec *records.Recorder
	recReg := prometheus.Registerer(reg)
	if cfg.Records.Driver == "none" {
		recReg = nil // no store, no records metrics (nor an alert about a store that is not there)
	}
	rm := metrics.NewRecords(recReg, func() records.Stats { return rec.Stats() })
	rec, err = openRecords(cfg, log, rm.StoreError)
	if err != nil {
		return err
	}
	defer func() {
		// After the calls have ended: their records are written, or spooled.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := rec.Close(cctx); err != nil {
			log.Error("call records not all written at stop", "err", err)
		}
	}()
	var recExport admin.Records // a nil *records.Recorder must stay a nil interface
	if rec != nil {
		recExport = rec
	}

	health := &metrics.Health{}
	health.SetDetail(func() string {
		if rec == nil {
			return ""
		}
		return metrics.RecordsDetail(rec.Stats())
	})

	bind, advertise, err := mediaAddrs(cfg)
	if err != nil {
		return err
	}
	sched := media.NewScheduler(media.SchedulerOptions{Logger: log, OnLateness: m.ObservePacing})
	ports := media.NewPorts(bind, cfg.Media.PortMin, cfg.Media.PortMax)
	m.WatchRTP(func() metrics.RTPTotals {
		t := sched.Stats()
		return metrics.RTPTotals{Sent: t.FramesSent, Received: t.PacketsReceived,
			DroppedForeign: t.DroppedForeign, DroppedInvalid: t.DroppedInvalid, DroppedLate: t.FramesSkipped,
			DroppedLearning: t.DroppedLearning, LearnResets: t.LearnResets}
	})

	overrides := &routing.Overrides{}
	var eng *queue.Engine
	qm := metrics.NewQueues(reg, func() queue.Snapshot { return eng.Snapshot(time.Now()) },
		func(name string) bool { return live.Load().Table.QueueOpen(name, time.Now(), overrides.Snapshot()) },
		func(name string) time.Duration { return live.Load().Settings(name).ServiceLevel })
	eng, err = queue.New(callflow.QueueConfig(cfg), queue.WithLogger(log), queue.WithObserver(qm))
	if err != nil {
		return fmt.Errorf("queues: %w", err)
	}
	var srv *sip.Server
	sipSrv := func() *sip.Server { return srv }
	// stop ends the server: at once on ctx (a second SIGTERM, or the caller of run), or
	// when a drain has finished.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(sctx)
	flow := callflow.New(callflow.Options{
		Engine:    eng,
		Live:      &live,
		Overrides: overrides,
		Dialer:    sipDialer{sipSrv},
		Contacts:  sipContacts{sipSrv},
		Bridge:    bridgeLegs,
		Records:   callRecorder{rec},
		Queues:    qm,
		Routing:   metrics.NewRouting(reg, func() []routing.Override { return overrides.Active(time.Now()) }),
		Menus:     im,
		Logger:    log,
		// A fatal error stops the server through gctx: its calls are cut off then too, and
		// recorded as shutdown_fatal with the error (an orderly stop's cause is Canceled).
		Stopping: func() bool { return gctx.Err() != nil },
	})
	auth, err := digest.New(digest.Options{
		Realm:      cfg.SIP.Realm,
		Algorithms: cfg.SIP.DigestAlgorithms,
		Lookup: func(id string) (digest.HA1, bool) {
			h, ok := live.Load().Accounts[id]
			return h, ok
		},
		Decoy: func() digest.HA1 { return live.Load().Decoy },
	})
	if err != nil {
		return fmt.Errorf("sip auth: %w", err)
	}
	limits, err := newLimiter(cfg, log)
	if err != nil {
		return err
	}
	budget, err := newBudget(cfg)
	if err != nil {
		return err
	}
	defences := metrics.NewDefences(reg, func() int { return limits.BannedSources(time.Now()) })
	metrics.WatchBudget(reg, budget.Counts)
	conns := metrics.NewConns(reg, func(transport string) int {
		if srv == nil {
			return 0
		}
		return srv.OpenConnections(transport)
	})
	sipLimits := gate.Limits{
		TLSHandshakeTimeout:     cfg.SIP.TLS.HandshakeTimeout,
		TCPFirstRequestTimeout:  cfg.Security.FirstRequestTimeout,
		MaxConnections:          maxConnections(cfg, openFileLimit(), log),
		MaxConnectionsPerSource: cfg.Security.MaxConnectionsPerSource,
	}
	srv, err = sip.NewServer(sip.Options{
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
		Handler:           handleCall(flow, sipSrv),
		UserAgent:         cfg.SIP.UserAgent,
		AckTimeout:        cfg.SIP.AckTimeout,
		AnswerDelay:       cfg.SIP.AnswerDelay,
		MaxCalls:          cfg.CallLimits().MaxCalls,
		Scheduler:         sched,
		Ports:             ports,
		AdvertiseAddr:     advertise,
		InactivityTimeout: cfg.Media.InactivityTimeout,
		Observer:          callObserver{Metrics: m, rec: rec},
		Logger:            log,
		Auth:              auth,
		Registrar:         registrar.New(registrar.Options{}),
		Presence:          flow.Presence,
		Feature:           feature(flow),
		FeatureHandler:    featureCall(flow),
		Defences:          limits,
		LimitObserver:     defences,
		ConnObserver:      conns,
		Budget:            budget,
		UnackedTimeout:    cfg.Security.UnackedTimeout,
		Limits:            sipLimits,
		TLS:               ls.sipTLS.server,
		TLSClient:         ls.sipTLS.client,
	})
	if err != nil {
		return err
	}
	rl := &callflow.Reloader{Path: *cfgPath, Overrides: flagOverrides, Flow: flow,
		Metrics: metrics.NewReloads(reg, started), OnSelect: im.Selected, Logger: log}

	mux := http.NewServeMux()
	mux.Handle("/", metrics.Handler(reg, health))
	mux.Handle("/admin/", admin.Handler(admin.Options{
		Token: token, Table: func() *routing.Table { return live.Load().Table }, Overrides: overrides, Logger: log,
		Advocates: advocatesAPI{flow},
		State:     func() routing.State { return routing.State{Queues: eng.RoutingState(time.Now())} },
		Reload:    rl.Reload,
		Records:   recExport,
	}))
	httpSrv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	dr := &callflow.Drainer{Server: srv, SetReady: health.SetReady, Stop: stop, Timeout: cfg.SIP.DrainTimeout, Logger: log}
	rec.SetStopping(func() error { return context.Cause(gctx) })
	g.Go(func() error { return sched.Run(gctx) })
	g.Go(func() error { return flow.Run(gctx) })
	g.Go(func() error {
		return srv.ServeListeners(gctx, sip.Listeners{UDP: ls.udp, TCP: ls.tcp, TLS: ls.sipTLS.ln})
	})
	g.Go(func() error {
		if err := httpSrv.Serve(ls.http); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	if *pprofAddr != "" {
		if err := servePprof(gctx, g, *pprofAddr, log); err != nil {
			stop()
			_ = g.Wait()
			return err
		}
	}
	g.Go(func() error {
		<-gctx.Done()
		health.SetReady(false)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
		defer cancel()
		return httpSrv.Shutdown(sctx)
	})

	addrs := ls.addrs()
	addrs.Reload, addrs.Drain = rl.Reload, dr.Drain
	health.SetReady(true)
	log.Info("hotline listening", "sip_udp", addrs.SIPUDP, "sip_tcp", addrs.SIPTCP, "sip_tls", addrs.SIPTLS, "http", addrs.HTTP,
		"lines", len(cfg.Lines), "languages", snap.Prompts.Languages(), "max_connections", sipLimits.MaxConnections)
	if ready != nil {
		ready(addrs)
	}
	err = g.Wait()
	log.Info("hotline stopped")
	return err
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
	if ls.http, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		return ls, fmt.Errorf("http: %w", err)
	}
	undo.close(ls.http)
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
var _ sip.LimitObserver = (*metrics.Defences)(nil)

// newLimiter builds the per-source defences from the security section.
func newLimiter(cfg *config.Config, log *slog.Logger) (*limit.Limiter, error) {
	s := cfg.Security
	l, err := limit.New(limit.Config{
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
func newBudget(cfg *config.Config) (*limit.Budget, error) {
	l := cfg.CallLimits()
	b, err := limit.NewBudget(limit.BudgetConfig{Calls: l.UntrustedCalls, Unacked: l.UnackedCalls,
		UnackedPerSource: cfg.Security.UnackedCallsPerSource})
	if err != nil {
		return nil, fmt.Errorf("security: %w", err)
	}
	return b, nil
}

func defaultConfig() []byte { return config.Default() }

// listenSIP binds the SIP transports on addr. With port 0 the UDP port is chosen first and TCP
// takes the same number, so one address serves both.
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
