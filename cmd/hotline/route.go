package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hotline-project/hotline/admin"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/routing"
)

// routeCmd prints where a call would be routed and why. By default it routes with a
// configuration file and no live state; the what-if flags add emergency overrides and
// queue states. With -server it asks a running server's admin API instead, which routes
// with its live overrides and queues.
func routeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("route", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration `file` (default: the embedded default)")
	line := fs.String("line", "", "the line called: a dialled `number` or a line name")
	lang := fs.String("lang", "", "the caller's `language`, such as es")
	reason := fs.String("reason", "", "the `reason` chosen in the menu, such as help_now")
	atFlag := fs.String("at", "", "`time` of the call, RFC 3339 like 2026-12-25T03:00:00-06:00 (default now)")
	server := fs.String("server", "", "ask the server whose HTTP address is `URL` (admin API, token in $"+admin.TokenEnv+"), with its live overrides and queues")
	var closed, nobodyIn, waits listFlag
	fs.Var(&closed, "closed", "what if `schedule` were forced closed (repeatable)")
	forceRoute := fs.String("force-route", "", "what if every call were forced to `route`")
	fs.Var(&nobodyIn, "nobody-in", "what if nobody were logged in to `queue` (repeatable)")
	fs.Var(&waits, "longest-wait", "what if `queue=duration` were a queue's longest wait, like es=5m (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("route: unexpected argument %q", fs.Arg(0))
	}
	var at time.Time
	if *atFlag != "" {
		t, err := time.Parse(time.RFC3339, *atFlag)
		if err != nil {
			return fmt.Errorf("route: -at %q is not an RFC 3339 time like 2026-12-25T03:00:00-06:00", *atFlag)
		}
		at = t
	}

	var e admin.Explanation
	if *server != "" {
		if *cfgPath != "" || len(closed)+len(nobodyIn)+len(waits) > 0 || *forceRoute != "" {
			return errors.New("route: -server routes with the server's configuration and state; it cannot be combined with -config or what-if flags")
		}
		var err error
		if e, err = askServer(ctx, *server, *line, *lang, *reason, *atFlag); err != nil {
			return fmt.Errorf("route: %w", err)
		}
	} else {
		cfg, err := loadConfigOrDefault(*cfgPath, stderr)
		if err != nil {
			return err
		}
		tb, err := routing.Compile(cfg.RoutingSpec())
		if err != nil {
			return fmt.Errorf("route: %w", err) // Parse ran the same checks; not expected
		}
		if at.IsZero() {
			at = time.Now()
		}
		st, err := whatIf(tb, at, closed, *forceRoute, nobodyIn, waits)
		if err != nil {
			return fmt.Errorf("route: %w", err)
		}
		if e, err = admin.Explain(tb, *line, *lang, *reason, at, st); err != nil {
			return fmt.Errorf("route: %w", err)
		}
	}
	writeExplanation(stdout, e)
	return nil
}

// loadConfigOrDefault loads path, or the embedded default when path is "", reporting
// configuration errors one a line as check does.
func loadConfigOrDefault(path string, stderr io.Writer) (*config.Config, error) {
	if path == "" {
		return config.MustDefault(), nil
	}
	cfg, err := config.Load(path)
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(stderr, e.Error())
		}
		return nil, errReported
	}
	return cfg, err
}

// whatIf builds the state the what-if flags describe; queues they do not name have an
// unknown state.
func whatIf(tb *routing.Table, at time.Time, closed []string, forceRoute string, nobodyIn, waits []string) (routing.State, error) {
	var st routing.State
	since := at.Add(-time.Minute)
	for _, s := range closed {
		if !tb.HasSchedule(s) {
			return st, fmt.Errorf("-closed: no schedule %q; schedules: %s", s, strings.Join(tb.Schedules(), ", "))
		}
		st.Overrides = append(st.Overrides, routing.Override{Kind: routing.ForceClosed, Schedule: s, Reason: "what if", Since: since})
	}
	if forceRoute != "" {
		if !tb.HasRoute(forceRoute) {
			return st, fmt.Errorf("-force-route: no route %q; routes: %s", forceRoute, strings.Join(tb.Routes(), ", "))
		}
		st.Overrides = append(st.Overrides, routing.Override{Kind: routing.ForceRoute, Route: forceRoute, Reason: "what if", Since: since})
	}
	queue := func(q string) routing.QueueState {
		if st.Queues == nil {
			st.Queues = map[string]routing.QueueState{}
		}
		s, ok := st.Queues[q]
		if !ok {
			s.LoggedIn = 1 // someone, unless -nobody-in says otherwise
		}
		return s
	}
	for _, w := range waits {
		q, d, ok := strings.Cut(w, "=")
		dur, err := time.ParseDuration(d)
		if !ok || q == "" || err != nil || dur < 0 {
			return st, fmt.Errorf("-longest-wait %q is not queue=duration, like es=5m", w)
		}
		s := queue(q)
		s.LongestWait = dur
		st.Queues[q] = s
	}
	for _, q := range nobodyIn {
		s := queue(q)
		s.LoggedIn = 0
		st.Queues[q] = s
	}
	return st, nil
}

// askServer gets the explanation from a running server's admin API.
func askServer(ctx context.Context, server, line, lang, reason, at string) (admin.Explanation, error) {
	var e admin.Explanation
	q := url.Values{"line": {line}, "lang": {lang}, "reason": {reason}}
	if at != "" {
		q.Set("at", at)
	}
	body, err := adminRequest(ctx, http.MethodGet, server, "/admin/v1/route?"+q.Encode(), http.StatusOK)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return e, fmt.Errorf("%s: %w", server, err)
	}
	return e, nil
}

// adminRequest calls a running server's admin API with the token in $HOTLINE_ADMIN_TOKEN
// and returns the body of a response with status want; any other status is an error
// saying what went wrong.
func adminRequest(ctx context.Context, method, server, path string, want int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(server, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	tok := strings.TrimSpace(os.Getenv(admin.TokenEnv))
	if tok == "" {
		return nil, fmt.Errorf("set $%s to the server's admin token", admin.TokenEnv)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case want:
		return body, nil
	case http.StatusNotFound:
		return nil, fmt.Errorf("%s: 404 Not Found: is the admin API on (admin.token_file or $%s on the server)?", server, admin.TokenEnv)
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("%s: 401 Unauthorized: wrong $%s", server, admin.TokenEnv)
	}
	var er admin.ErrorResponse
	if json.Unmarshal(body, &er) == nil && er.Error != "" {
		return nil, errors.New(er.Error)
	}
	var rr admin.ReloadResponse
	if json.Unmarshal(body, &rr) == nil && rr.Error != "" {
		return nil, errors.New(rr.Error)
	}
	return nil, fmt.Errorf("%s: %s", server, resp.Status)
}

// writeExplanation prints e for people.
func writeExplanation(w io.Writer, e admin.Explanation) {
	line := quoteEmpty(e.Line)
	if e.Dialled != "" {
		line += fmt.Sprintf(" (dialled %s)", e.Dialled)
	}
	fmt.Fprintf(w, "call      line %s, language %s, reason %s\n", line, quoteEmpty(e.Language), quoteEmpty(e.Reason))
	fmt.Fprintf(w, "at        %s\n", e.At.Format(time.RFC3339))
	fmt.Fprintf(w, "decision  %s\n", e.Summary)
	for i, s := range e.Overflow {
		label := "overflow"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(w, "%-8s  after %s waiting: %s\n", label, s.After, s)
	}
	for i, o := range e.Overrides {
		label := "override"
		if i > 0 {
			label = ""
		}
		state := "in force"
		if !o.ActiveAt(e.At) {
			state = "not in force at this time"
		}
		fmt.Fprintf(w, "%-8s  %s: %s\n", label, o, state)
	}
	fmt.Fprintln(w, "why")
	for _, s := range e.Explain {
		fmt.Fprintf(w, "  %s\n", s)
	}
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}
