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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/metrics"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/registrar"
	"github.com/hotline-project/hotline/sip"
	"github.com/hotline-project/hotline/sip/digest"
)

// Addrs are the addresses the server is bound to.
type Addrs struct {
	SIPUDP, SIPTCP, HTTP string
}

// requiredPrompts are the prompts every configured language must have.
var requiredPrompts = []string{ivr.PromptGreeting, ivr.PromptLanguageMenu, ivr.PromptLanguageSelected}

func serveCmd(ctx context.Context, args []string, stderr io.Writer, ready func(Addrs)) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration `file` (default: the embedded configuration; see 'hotline config')")
	sipAddr := fs.String("sip", "", "SIP listen `address` for UDP and TCP (overrides sip.listen)")
	httpAddr := fs.String("http", "", "HTTP listen `address` for /metrics, /healthz, /readyz (overrides http.listen)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
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
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *sipAddr != "" {
		cfg.SIP.Listen = *sipAddr
	}
	if *httpAddr != "" {
		cfg.HTTP.Listen = *httpAddr
	}
	cat, err := loadPrompts(cfg)
	if err != nil {
		return err
	}

	udp, tcp, err := listenSIP(cfg.SIP.Listen, cfg.SIP.Transports)
	if err != nil {
		return err
	}
	httpLn, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		closeAll(udp, tcp)
		return fmt.Errorf("http: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	health := &metrics.Health{}

	bind, err := netip.ParseAddr(cfg.Media.BindAddress)
	if err != nil {
		closeAll(udp, tcp, httpLn)
		return fmt.Errorf("media.bind_address: %w", err)
	}
	var advertise netip.Addr
	if cfg.Media.AdvertiseAddress != "" {
		if advertise, err = netip.ParseAddr(cfg.Media.AdvertiseAddress); err != nil {
			closeAll(udp, tcp, httpLn)
			return fmt.Errorf("media.advertise_address: %w", err)
		}
	} else if !bind.IsUnspecified() {
		advertise = bind
	}
	sched := media.NewScheduler(media.SchedulerOptions{Logger: log, OnLateness: m.ObservePacing})
	ports := media.NewPorts(bind, cfg.Media.PortMin, cfg.Media.PortMax)
	m.WatchRTP(func() metrics.RTPTotals {
		t := sched.Stats()
		return metrics.RTPTotals{Sent: t.FramesSent, Received: t.PacketsReceived,
			DroppedForeign: t.DroppedForeign, DroppedInvalid: t.DroppedInvalid}
	})

	menu := &ivr.LanguageMenu{
		Prompts:           cat,
		DefaultLanguage:   cfg.IVR.DefaultLanguage,
		FirstDigitTimeout: cfg.IVR.FirstDigitTimeout,
		Logger:            log,
	}
	for i, l := range cfg.IVR.Languages { // until the menu engine (ivr.New) is wired in: 1, 2, ...
		menu.Choices = append(menu.Choices, ivr.Choice{Digit: rune('1' + i), Language: l.Language})
	}
	auth, err := newAuthenticator(cfg)
	if err != nil {
		closeAll(udp, tcp, httpLn)
		return err
	}
	srv, err := sip.NewServer(sip.Options{
		Lines: func(dialled string) (string, bool) {
			l, ok := cfg.LookupLine(dialled)
			if !ok {
				return "", false
			}
			return l.Name, true
		},
		Handler:           callHandler(menu),
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
		// Presence and Feature are wired to the queue engine's advocate states with it.
	})
	if err != nil {
		closeAll(udp, tcp, httpLn)
		return err
	}

	httpSrv := &http.Server{
		Handler:           metrics.Handler(reg, health),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sched.Run(gctx) })
	g.Go(func() error { return srv.Serve(gctx, udp, tcp) })
	g.Go(func() error {
		if err := httpSrv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		health.SetReady(false)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
		defer cancel()
		return httpSrv.Shutdown(sctx)
	})

	addrs := Addrs{HTTP: httpLn.Addr().String()}
	if udp != nil {
		addrs.SIPUDP = udp.LocalAddr().String()
	}
	if tcp != nil {
		addrs.SIPTCP = tcp.Addr().String()
	}
	health.SetReady(true)
	log.Info("hotline listening", "sip_udp", addrs.SIPUDP, "sip_tcp", addrs.SIPTCP, "http", addrs.HTTP,
		"lines", len(cfg.Lines), "languages", cat.Languages())
	if ready != nil {
		ready(addrs)
	}
	err = g.Wait()
	log.Info("hotline stopped")
	return err
}

// sip.Server reports authentication failures and registrations to the metrics.
var _ sip.AuthObserver = (*metrics.Metrics)(nil)

// newAuthenticator authenticates advocates' phones against the configured accounts.
func newAuthenticator(cfg *config.Config) (*digest.Authenticator, error) {
	accounts := make(map[string]digest.HA1, len(cfg.Advocates))
	for _, a := range cfg.Advocates {
		accounts[a.ID] = digest.HA1{SHA256: a.HA1SHA256, MD5: a.HA1MD5}
	}
	auth, err := digest.New(digest.Options{
		Realm: cfg.SIP.Realm,
		Lookup: func(id string) (digest.HA1, bool) {
			h, ok := accounts[id]
			return h, ok
		},
	})
	if err != nil {
		return nil, fmt.Errorf("sip auth: %w", err)
	}
	return auth, nil
}

// callHandler runs the IVR on an answered call.
func callHandler(menu *ivr.LanguageMenu) sip.Handler {
	return func(ctx context.Context, c *sip.Call) {
		if _, err := menu.Run(ctx, c); err != nil {
			return
		}
		// The queue and the advocates' phones come next (issue 5); until then the caller stays
		// on the line, hearing silence, until they hang up.
		<-ctx.Done()
	}
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Parse("<embedded>", config.Default())
	}
	return config.Load(path)
}

func defaultConfig() []byte { return config.Default() }

func loadPrompts(cfg *config.Config) (*prompts.Catalogue, error) {
	cat, err := prompts.LoadEmbedded()
	if err != nil {
		return nil, fmt.Errorf("embedded prompts: %w", err)
	}
	if cfg.Prompts.Dir != "" {
		own, err := prompts.LoadDir(cfg.Prompts.Dir)
		if err != nil {
			return nil, err
		}
		cat = cat.Overlay(own)
	}
	langs := []string{cfg.IVR.DefaultLanguage}
	for _, l := range cfg.IVR.Languages {
		langs = append(langs, l.Language)
	}
	if missing := cat.Missing(langs, requiredPrompts); len(missing) > 0 {
		return nil, fmt.Errorf("prompts: missing %s", strings.Join(missing, ", "))
	}
	return cat, nil
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
