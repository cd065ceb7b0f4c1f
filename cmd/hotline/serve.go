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
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/hotline-project/hotline/admin"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/metrics"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/registrar"
	"github.com/hotline-project/hotline/routing"
	"github.com/hotline-project/hotline/sip"
	"github.com/hotline-project/hotline/sip/digest"
	"github.com/hotline-project/hotline/sip/limit"
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
	cfg, err := loadConfig(*cfgPath)
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
	m := metrics.New(reg)
	im := metrics.NewIVR(reg)
	snap, err := buildSnapshot(cfg, started, im.Selected)
	if err != nil {
		return err
	}
	var live atomic.Pointer[snapshot]
	live.Store(snap)
	token, err := admin.LoadToken(cfg.Admin.TokenFile)
	if err != nil {
		return err
	}
	sipTLS, err := listenSIPTLS(cfg.SIP.TLS)
	if err != nil {
		return err
	}
	tlsLn := sipTLS.ln
	udp, tcp, err := listenSIP(cfg.SIP.Listen, cfg.SIP.Transports)
	if err != nil {
		closeAll(tlsLn)
		return err
	}
	httpLn, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		closeAll(udp, tcp, tlsLn)
		return fmt.Errorf("http: %w", err)
	}
	// The records are opened only once the ports are ours: opening them marks this node's
	// calls left in progress as interrupted, which must not happen to a running server's
	// calls when a second one is started by mistake (issue 13).
	recDB, rec, err := openRecords(ctx, cfg, log)
	if err != nil {
		closeAll(udp, tcp, httpLn, tlsLn)
		return err
	}
	if recDB != nil {
		defer recDB.Close()
	}
	var recExport admin.Records // a nil *records.DB must stay a nil interface
	if recDB != nil {
		recExport = recDB
	}

	health := &metrics.Health{}

	bind, err := netip.ParseAddr(cfg.Media.BindAddress)
	if err != nil {
		closeAll(udp, tcp, httpLn, tlsLn)
		return fmt.Errorf("media.bind_address: %w", err)
	}
	var advertise netip.Addr
	if cfg.Media.AdvertiseAddress != "" {
		if advertise, err = netip.ParseAddr(cfg.Media.AdvertiseAddress); err != nil {
			closeAll(udp, tcp, httpLn, tlsLn)
			return fmt.Errorf("media.advertise_address: %w", err)
		}
	} else if !bind.IsUnspecified() {
		advertise = bind
	}
	ov := newOverload(cfg.SIP.Overload)
	ovm := metrics.NewOverload(reg, func() metrics.OverloadState {
		st := ov.Stats()
		return metrics.OverloadState{Pending: st.Pending, Admit: st.Admit, Active: st.Active, Over: st.Over}
	})
	sched := media.NewScheduler(media.SchedulerOptions{Logger: log, OnLateness: func(late time.Duration) {
		m.ObservePacing(late)
		ov.ObserveLateness(late)
	}})
	ports := media.NewPorts(bind, cfg.Media.PortMin, cfg.Media.PortMax)
	m.WatchRTP(func() metrics.RTPTotals {
		t := sched.Stats()
		return metrics.RTPTotals{Sent: t.FramesSent, Received: t.PacketsReceived,
			DroppedForeign: t.DroppedForeign, DroppedInvalid: t.DroppedInvalid, DroppedLate: t.FramesSkipped}
	})

	overrides := &routing.Overrides{}
	var eng *queue.Engine
	qm := metrics.NewQueues(reg, func() queue.Snapshot { return eng.Snapshot(time.Now()) },
		func(name string) bool { return live.Load().table.QueueOpen(name, time.Now(), overrides.Snapshot()) },
		func(name string) time.Duration { return live.Load().settings(name).ServiceLevel })
	eng, err = queue.New(queueConfig(cfg), queue.WithLogger(log), queue.WithObserver(qm))
	if err != nil {
		closeAll(udp, tcp, httpLn, tlsLn)
		return fmt.Errorf("queues: %w", err)
	}
	var srv *sip.Server
	disp := newDispatcher(eng, &live, qm, contactsOf(func() *sip.Server { return srv }), log)
	sb := &switchboard{
		live:      &live,
		overrides: overrides,
		routing:   metrics.NewRouting(reg, func() []routing.Override { return overrides.Active(time.Now()) }),
		ivr:       im,
		queues:    disp,
		records:   rec,
		now:       time.Now,
		log:       log,
	}
	auth, err := digest.New(digest.Options{
		Realm:      cfg.SIP.Realm,
		Algorithms: cfg.SIP.DigestAlgorithms,
		Lookup: func(id string) (digest.HA1, bool) {
			h, ok := live.Load().accounts[id]
			return h, ok
		},
		Decoy: func() digest.HA1 { return live.Load().decoy },
	})
	if err != nil {
		closeAll(udp, tcp, httpLn, tlsLn)
		return fmt.Errorf("sip auth: %w", err)
	}
	limits, err := newLimiter(cfg, log)
	if err != nil {
		closeAll(udp, tcp, httpLn, tlsLn)
		return err
	}
	defences := metrics.NewDefences(reg, func() int { return limits.BannedSources(time.Now()) })
	srv, err = sip.NewServer(sip.Options{
		Lines: func(dialled string) (string, bool) {
			l, ok := live.Load().cfg.LookupLine(dialled)
			if !ok {
				return "", false
			}
			return l.Name, true
		},
		LineSRTP: func(name string) sip.SRTPPolicy {
			return lineSRTP(live.Load().cfg, name)
		},
		Handler:           sb.handle,
		UserAgent:         cfg.SIP.UserAgent,
		AckTimeout:        cfg.SIP.AckTimeout,
		AnswerDelay:       cfg.SIP.AnswerDelay,
		MaxCalls:          cfg.SIP.MaxCalls,
		Scheduler:         sched,
		Ports:             ports,
		AdvertiseAddr:     advertise,
		InactivityTimeout: cfg.Media.InactivityTimeout,
		Observer:          m,
		Logger:            log,
		Auth:              auth,
		Registrar:         registrar.New(registrar.Options{}),
		Presence:          disp.presence,
		Feature:           disp.feature,
		FeatureHandler:    disp.featureCall,
		Defences:          limits,
		LimitObserver:     defences,
		Limits:            sip.Limits{TLSHandshakeTimeout: cfg.SIP.TLS.HandshakeTimeout},
		TLS:               sipTLS.server,
		TLSClient:         sipTLS.client,
		Overload:          ov,
		OverloadObserver:  ovm,
	})
	if err != nil {
		closeAll(udp, tcp, httpLn, tlsLn)
		return err
	}
	disp.srv = srv
	rl := &reloader{path: *cfgPath, overrides: flagOverrides, live: &live, eng: eng, disp: disp,
		metrics: metrics.NewReloads(reg, started), onSelect: im.Selected, log: log, now: time.Now}

	mux := http.NewServeMux()
	mux.Handle("/", metrics.Handler(reg, health))
	mux.Handle("/admin/", admin.Handler(admin.Options{
		Token: token, Table: func() *routing.Table { return live.Load().table }, Overrides: overrides, Logger: log,
		Advocates: advocatesAPI{disp},
		State:     func() routing.State { return routing.State{Queues: eng.RoutingState(time.Now())} },
		Reload:    rl.reload,
		Records:   recExport,
	}))
	httpSrv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// stop ends the server: at once on ctx (a second SIGTERM, or the caller of run), or
	// when a drain has finished.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	dr := &drainer{srv: srv, health: health, stop: stop, timeout: cfg.SIP.DrainTimeout, log: log}
	sb.stopping = func() bool { return sctx.Err() != nil }
	g, gctx := errgroup.WithContext(sctx)
	g.Go(func() error { return sched.Run(gctx) })
	g.Go(func() error { watchCPUWaits(gctx, ov); return nil })
	g.Go(func() error { return disp.run(gctx) })
	g.Go(func() error { return rec.Run(gctx) })
	g.Go(func() error { return srv.ServeListeners(gctx, sip.Listeners{UDP: udp, TCP: tcp, TLS: tlsLn}) })
	g.Go(func() error {
		if err := httpSrv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
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

	addrs := Addrs{HTTP: httpLn.Addr().String(), Reload: rl.reload, Drain: dr.drain}
	if udp != nil {
		addrs.SIPUDP = udp.LocalAddr().String()
	}
	if tcp != nil {
		addrs.SIPTCP = tcp.Addr().String()
	}
	if tlsLn != nil {
		addrs.SIPTLS = tlsLn.Addr().String()
	}
	health.SetReady(true)
	log.Info("hotline listening", "sip_udp", addrs.SIPUDP, "sip_tcp", addrs.SIPTCP, "sip_tls", addrs.SIPTLS, "http", addrs.HTTP,
		"lines", len(cfg.Lines), "languages", snap.prompts.Languages())
	if ready != nil {
		ready(addrs)
	}
	err = g.Wait()
	rec.Wait()
	log.Info("hotline stopped")
	return err
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
	})
	if err != nil {
		return nil, fmt.Errorf("security: %w", err)
	}
	if len(s.TrustedSources) == 0 && (s.RequestRate > 0 || s.MaxCallsPerSource > 0) {
		log.Warn("security.trusted_sources is empty: the carrier's SIP trunk is limited like any other source; list its addresses there")
	}
	return l, nil
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Parse("<embedded>", config.Default())
	}
	return config.Load(path)
}

func defaultConfig() []byte { return config.Default() }

// promptReport is what loading the prompts found: the languages that lack recordings of
// their own (played from a fallback), and the prompts no language of the chain has.
type promptReport struct {
	Missing    []string // lang/name with no recording of its own: played from a fallback
	Unresolved []string // lang/name that cannot be played at all
}

// neededPrompts are the prompt names the configuration plays: the menus', the routes'
// messages, and the words numbers and durations are spoken with in each language.
func neededPrompts(cfg *config.Config, cat *prompts.Catalogue) map[string][]string {
	base := append(cfg.PromptNames(),
		// what waiting callers hear, what a caller hears when a target cannot be reached,
		// and the confirmations of advocates' feature codes
		"you_are_caller_number", "expected_wait", "closed",
		"advocate_available", "advocate_paused", "advocate_logged_out")
	for _, r := range cfg.Routes {
		if r.Message != "" {
			base = append(base, r.Message)
		}
	}
	need := map[string][]string{}
	for _, lang := range cfg.IVR.LanguageTags() {
		names := slices.Clone(base)
		names = append(names, cat.NumberNames(lang)...)
		slices.Sort(names)
		need[lang] = slices.Compact(names)
	}
	return need
}

// loadPrompts loads the embedded prompts, overlays the configured directory, applies the
// languages' fallbacks and checks that every prompt the configuration plays resolves in
// every language. Missing-but-resolved prompts are returned in the report for `check`.
func loadPrompts(cfg *config.Config) (*prompts.Catalogue, promptReport, error) {
	var rep promptReport
	cat, err := prompts.LoadEmbedded()
	if err != nil {
		return nil, rep, fmt.Errorf("embedded prompts: %w", err)
	}
	if cfg.Prompts.Dir != "" {
		own, err := prompts.LoadDir(cfg.Prompts.Dir)
		if err != nil {
			return nil, rep, err
		}
		cat = cat.Overlay(own)
	}
	cat, err = cat.WithFallbacks(cfg.IVR.Fallbacks())
	if err != nil {
		return nil, rep, err
	}
	need := neededPrompts(cfg, cat)
	for _, lang := range cfg.IVR.LanguageTags() {
		rep.Missing = append(rep.Missing, cat.Missing([]string{lang}, need[lang])...)
		rep.Unresolved = append(rep.Unresolved, cat.Unresolved([]string{lang}, need[lang])...)
	}
	if len(rep.Unresolved) > 0 {
		return nil, rep, fmt.Errorf("prompts: missing %s (no recording in the language or its fallbacks)",
			strings.Join(rep.Unresolved, ", "))
	}
	return cat, rep, nil
}

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

func closeAll(cs ...io.Closer) {
	for _, c := range cs {
		if c != nil {
			c.Close()
		}
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
func lineSRTP(cfg *config.Config, name string) sip.SRTPPolicy {
	for _, l := range cfg.Lines {
		if l.Name != name {
			continue
		}
		p := sip.SRTPPolicy{AllowInsecureSignalling: l.SRTPAllowPlainSIP}
		switch l.SRTP {
		case config.SRTPOptional:
			p.Mode = sip.SRTPOptional
		case config.SRTPRequired:
			p.Mode = sip.SRTPRequired
		}
		return p
	}
	return sip.SRTPPolicy{}
}
