// Command loadgen is hotline's load generator. It places calls over SIP (UDP) to a running
// server, receives the RTP the server sends and measures its pacing at arrival, registers
// advocates with digest authentication and answers the server's INVITEs for bridged calls,
// and reads the server's CPU time and memory from /proc. Each subcommand is one
// measurement and prints a Markdown table; bench/run drives them (see bench/README.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: loadgen floor|config|play|rate|surge|bridge|overload [flags]")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	switch args[0] {
	case "floor":
		return floorCmd(args[1:], stdout, stderr)
	case "config":
		return configCmd(args[1:], stdout, stderr)
	case "play", "rate", "surge", "bridge", "overload":
		return scenarioCmd(ctx, args[0], args[1:], stdout, stderr, log)
	}
	return errUsage
}

// common are the flags every scenario takes.
type common struct {
	server, metrics, number string
	pid, sockets, workers   int
	floorSend, floorRecv    float64 // µs of CPU per packet
	window, settle          time.Duration
	rate                    float64
}

func scenarioCmd(ctx context.Context, name string, args []string, stdout, stderr io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	fs.StringVar(&c.server, "server", "127.0.0.1:5060", "the server's SIP UDP `address`")
	fs.StringVar(&c.metrics, "metrics", "http://127.0.0.1:9095/metrics", "the server's metrics `URL`")
	fs.StringVar(&c.number, "number", "18883737888", "the number dialled")
	fs.IntVar(&c.pid, "pid", 0, "the server's process id, for CPU and memory from /proc (0: not measured)")
	fs.IntVar(&c.sockets, "sockets", 4, "RTP sockets the generator shares among its calls")
	fs.IntVar(&c.workers, "workers", 2, "RTP sending goroutines of the generator")
	fs.Float64Var(&c.floorSend, "floor-send", 0, "measured CPU `µs` to send one 172-byte UDP packet (loadgen floor)")
	fs.Float64Var(&c.floorRecv, "floor-recv", 0, "measured CPU `µs` to receive one (loadgen floor)")
	fs.DurationVar(&c.window, "window", 10*time.Second, "length of each measurement window")
	fs.DurationVar(&c.settle, "settle", 3*time.Second, "wait after a step's calls are up before measuring")
	fs.Float64Var(&c.rate, "rate", 200, "calls per second when building up calls")
	steps := fs.String("steps", "", "comma-separated steps: calls (play), calls per second (rate)")
	every := fs.Int64("every", 50, "play/overload: callers send one RTP packet every this many 20 ms frames (1: 50/s)")
	hold := fs.Duration("hold", time.Second, "rate: how long each call stays up after the 200")
	stepDur := fs.Duration("step", 10*time.Second, "rate: how long each rate is offered")
	cpuProfile := fs.String("cpuprofile", "", "write the generator's own CPU profile to this `file`")
	n := fs.Int("n", 500, "bridge: bridged calls (the config needs as many advocates); overload: the server's sip.max_calls")
	if err := fs.Parse(args); err != nil {
		return err
	}
	list, err := parseSteps(*steps)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	g, err := newGen(c.server, c.number, c.sockets, c.workers, log)
	if err != nil {
		return err
	}
	defer g.close()
	stopSend := make(chan struct{})
	defer close(stopSend)
	go g.snd.run(stopSend)
	s := &scenario{c: c, g: g, log: log, out: stdout}
	limited0, err := scrape(c.metrics, "hotline_sip_rate_limited_total")
	if err != nil {
		return fmt.Errorf("the server's metrics: %w", err)
	}
	switch name {
	case "play":
		if len(list) == 0 {
			list = []int{500, 1000, 2000, 3000, 4000, 5000}
		}
		err = s.play(ctx, list, *every)
	case "rate", "surge":
		if len(list) == 0 {
			list = []int{250, 500, 1000, 1500}
		}
		err = s.rateSteps(ctx, list, *hold, *stepDur, name == "surge")
	case "bridge":
		err = s.bridge(ctx, *n)
	default:
		err = s.overload(ctx, *n, *every)
	}
	if err != nil {
		return err
	}
	return g.sane(c.metrics, limited0)
}

// sane fails the run loudly when its figures would mean nothing: no call answered at all, or
// requests refused by the server's per-source limits (the generator's address must be in
// security.trusted_sources, as a carrier's trunk is; see loadgen config).
func (g *gen) sane(metrics string, limited0 float64) error {
	limited, err := scrape(metrics, "hotline_sip_rate_limited_total")
	if err != nil {
		return fmt.Errorf("the server's metrics: %w", err)
	}
	if d := limited - limited0; d > 0 {
		return fmt.Errorf("the server's per-source limits refused %.0f of the generator's requests (hotline_sip_rate_limited_total): is its address in security.trusted_sources?", d)
	}
	if g.answered.Load() == 0 {
		return errors.New("the server answered no call: the figures above mean nothing")
	}
	return nil
}

func parseSteps(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("steps: %q is not a positive whole number", f)
		}
		out = append(out, v)
	}
	return out, nil
}
