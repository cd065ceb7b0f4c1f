// Command hotline is a SIP IVR and call-routing server for crisis and help hotlines.
//
//	hotline [serve] [-config FILE] [-sip ADDR] [-http ADDR]   run the server
//	hotline config                                            print the embedded default configuration
//	hotline check -config FILE                                validate a configuration
//	hotline reload [-server URL]                              reload a running server's configuration
//	hotline route [-config FILE] -line N -lang L -reason R    explain a routing decision
//	hotline passwd -id ID [-realm R]                          hash an advocate's password
//	hotline records [-config FILE] [-since T] [-until T]      export call records as CSV
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

func main() {
	// Only main handles signals, so that run can be embedded in tests: SIGHUP reloads the
	// configuration; the first SIGTERM (or interrupt) drains, the second stops at once.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	var controls atomic.Pointer[Addrs]
	go func() {
		draining := false
		for sig := range sigs {
			a := controls.Load()
			switch {
			case a == nil && sig == syscall.SIGHUP: // not serving yet: nothing to reload
			case a == nil: // not serving (yet): stop
				stop()
			case sig == syscall.SIGHUP:
				_ = a.Reload() // logged and counted by the server
			case !draining:
				draining = true
				a.Drain()
			default:
				stop()
			}
		}
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, func(a Addrs) { controls.Store(&a) }))
}

// run executes one command line and returns the process exit status. ready, if not nil, is
// called with the server's bound addresses once it takes calls (tests use it).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(Addrs)) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serveCmd(ctx, args, stderr, ready)
	case "config":
		_, err = stdout.Write(defaultConfig())
	case "check":
		err = checkCmd(args, stdout, stderr)
	case "reload":
		err = reloadCmd(ctx, args, stdout, stderr)
	case "route":
		err = routeCmd(ctx, args, stdout, stderr)
	case "passwd":
		err = passwdCmd(args, os.Stdin, stdout, stderr)
	case "records":
		err = recordsCmd(ctx, args, stdout, stderr)
	case "cluster":
		err = clusterCmd(ctx, args, stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "hotline: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errReported) {
			fmt.Fprintf(stderr, "hotline: %v\n", err)
		}
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	return 0
}

// errReported means the error was already written for the user.
var errReported = errors.New("reported")

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  hotline [serve] [-config FILE] [-sip ADDR] [-http ADDR] [-log-format text|json]
        run the server (embedded defaults when -config is not given)
  hotline config
        print the embedded default configuration
  hotline check -config FILE
        validate a configuration; errors are FILE:LINE: field: problem
  hotline reload [-server URL]
        make a running server load its configuration file again (as SIGHUP does)
  hotline route [-config FILE | -server URL] -line NUMBER|NAME -lang LANG -reason REASON [-at TIME]
        print where such a call goes and why (hotline route -h for what-if flags)
  hotline passwd -id ID [-realm REALM]
        read an advocate's password from stdin and print their advocates entry (HA1 hashes)
  hotline records [-config FILE] [-since TIME] [-until TIME]
        write the call records of calls that started in [since, until) as CSV to stdout
  hotline cluster status [-server URL]
        print the state log's cluster: this node, leader, quorum, members, applied index, lag
  hotline cluster add -id NODE -addr IP:PORT [-server URL]
  hotline cluster remove -id NODE [-server URL]
        add a node to, or remove one from, the cluster (README "Cluster")
`)
}
