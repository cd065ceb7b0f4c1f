package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/hotline-project/hotline/internal/testtool"
)

const (
	dashboardFile = "grafana/hotline.json"
	rulesFile     = "prometheus/rules.yml"
	metricsFile   = "metrics.txt"
)

// lookTool returns the path of a tool a test needs; see testtool.LookTool.
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	return testtool.LookTool(t, name, pkg)
}

// promtool runs promtool with args in dir and fails the test with its output on error.
func promtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(lookTool(t, "promtool", "prometheus"), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestPromtool checks the rules and the sample config, and runs the rules' unit tests.
func TestPromtool(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"check rules", []string{"check", "rules", "rules.yml"}},
		{"test rules", []string{"test", "rules", "rules_test.yml"}},
		{"check config", []string{"check", "config", "prometheus.yml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			promtool(t, "prometheus", tc.args...)
		})
	}
}

// dashboard is the part of a Grafana dashboard's JSON model that the tests look at.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels lists the dashboard's panels, those inside collapsed rows included.
func (d dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// query is one PromQL expression of the dashboard, with where it comes from.
type query struct {
	where, expr string
}

// labelValues matches a Grafana query variable's label_values(expr, label).
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

// queries returns every PromQL expression in the dashboard: panel targets and the
// expressions inside query variables.
func (d dashboard) queries(t *testing.T) []query {
	t.Helper()
	var qs []query
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			qs = append(qs, query{fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), tg.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: definition %q is not label_values(expr, label)", v.Name, v.Definition)
			continue
		}
		qs = append(qs, query{"variable " + v.Name, m[1]})
	}
	return qs
}

// TestDashboardModel checks the dashboard's structure: the rows on-call expect, the
// variables, one data source variable used everywhere, unique ids and a layout that fits.
func TestDashboardModel(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: want both", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 || d.SchemaVersion > 41 {
		t.Errorf("schemaVersion %d, want Grafana 10's (39)", d.SchemaVersion)
	}

	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${DS_PROMETHEUS}") {
			t.Errorf("variable %s: data source %+v, want ${DS_PROMETHEUS}", v.Name, v.Datasource)
		}
	}
	for name, typ := range map[string]string{"DS_PROMETHEUS": "datasource", "instance": "query", "queue": "query"} {
		if vars[name] != typ {
			t.Errorf("variable %s is %q, want a %s variable", name, vars[name], typ)
		}
	}

	var rows []string
	ids := map[int]string{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range d.allPanels() {
		if prev, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d, also used by %q", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v does not fit 24 columns", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("panel %q overlaps %q at %d,%d", p.Title, other, x, y)
					break
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			rows = append(rows, p.Title)
			continue
		}
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q: data source %+v, want uid ${DS_PROMETHEUS}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: target %q with expr %q (refIds must be set and unique)", p.Title, tg.RefID, tg.Expr)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q target %s: data source %+v, want uid ${DS_PROMETHEUS}", p.Title, tg.RefID, tg.Datasource)
			}
		}
	}
	wantRows := []string{"Queues at a glance", "Advocates", "Calls", "SIP and RTP health", "Config", "State and cluster"}
	if !slices.Equal(rows, wantRows) {
		t.Errorf("rows %q, want %q", rows, wantRows)
	}
}

// grafanaVars replaces the dashboard variables Grafana fills in with values that make the
// expression plain PromQL.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$__interval", "1m",
	"$__range", "6h",
	"$queue", ".*",
	"$instance", ".*",
)

// unknownVar finds a dashboard variable left after grafanaVars (label_replace's ${1} is
// PromQL's own).
var unknownVar = regexp.MustCompile(`\$[a-zA-Z_]|\$\{[a-zA-Z_]`)

// TestDashboardQueriesParse has promtool parse every dashboard expression: promtool has no
// command that checks a bare query, so they go into a rules file as recording rules.
func TestDashboardQueriesParse(t *testing.T) {
	qs := loadDashboard(t).queries(t)
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	for i, q := range qs {
		expr := grafanaVars.Replace(q.expr)
		if v := unknownVar.FindString(expr); v != "" {
			t.Errorf("%s: unknown dashboard variable %s in %q", q.where, v, q.expr)
		}
		rules = append(rules, rule{fmt.Sprintf("dashboard:query_%d", i), expr})
	}
	// JSON is YAML, so promtool reads this as a rules file.
	b, err := json.MarshalIndent(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.rules.yml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lookTool(t, "promtool", "prometheus"), "check", "rules", "dashboard.rules.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		// promtool names the failing rule by its index; map it back to the panel.
		msg := string(out)
		for i := len(qs) - 1; i >= 0; i-- {
			msg = strings.ReplaceAll(msg, fmt.Sprintf("dashboard:query_%d", i), qs[i].where)
		}
		t.Fatalf("promtool check rules on the dashboard's queries: %v\n%s", err, msg)
	}
	if len(qs) < 40 {
		t.Fatalf("only %d queries found in the dashboard", len(qs))
	}
}

// metricList reads metrics.txt; see testtool.MetricList.
func metricList(t *testing.T) map[string]string {
	t.Helper()
	return testtool.MetricList(t, metricsFile)
}

// ruleFile is the part of a Prometheus rules file that the tests look at.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(false)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return rf
}

var (
	promqlString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promqlRange    = regexp.MustCompile(`\[[^\[\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promqlOffset   = regexp.MustCompile(`\boffset\s+-?[0-9a-z]+`)
	promqlToken    = regexp.MustCompile(`[0-9][0-9a-zA-Z_.]*|[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promqlKeywords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true,
		"without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "atan2": true,
	}
)

// metricNames returns the metric names an expression selects. It is a small scanner, not
// a parser (that would bring the whole Prometheus module into go.mod): it drops strings,
// label matchers, ranges, grouping lists and offsets, then keeps the identifiers that are
// neither keywords nor function calls. promtool parses the same expressions, so a name the
// scanner misreads shows up as a name missing from metrics.txt, not as a silent pass.
func metricNames(expr string) []string {
	s := promqlString.ReplaceAllString(expr, `""`)
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlRange.ReplaceAllString(s, " ")
	s = promqlGrouping.ReplaceAllString(s, " ")
	s = promqlOffset.ReplaceAllString(s, " ")
	seen := map[string]bool{}
	var names []string
	for _, m := range promqlToken.FindAllStringSubmatch(s, -1) {
		tok := m[0]
		if tok[0] >= '0' && tok[0] <= '9' || m[1] != "" || promqlKeywords[strings.ToLower(tok)] {
			continue // a number, a function or aggregation, or a keyword
		}
		if !seen[tok] {
			seen[tok] = true
			names = append(names, tok)
		}
	}
	return names
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`up{job="hotline"} == 0 or absent(up{job="hotline"})`, []string{"up"}},
		{`sum by (queue) (rate(hotline_queue_calls_total{result="answered"}[5m])) * 60`, []string{"hotline_queue_calls_total"}},
		{`sum(rate(a_total[5m])) by (instance) / on (instance) group_left () sum without (x) (b)`, []string{"a_total", "b"}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket{x=~"a|b"}[$__rate_interval])))`, []string{"h_bucket"}},
		{`label_replace(rate(r_total{s="5.."}[1m]), "class", "${1}xx", "status", "([1-6])..")`, []string{"r_total"}},
		{`queue:hotline_queue_calls:increase15m >= 1e3 and bool x offset 5m`, []string{"queue:hotline_queue_calls:increase15m", "x"}},
		{`time() - max(ts_seconds)`, []string{"ts_seconds"}},
		{`rate(x[5m:1m]) > Inf`, []string{"x"}},
		{`sum(y{a="{b}"})`, []string{"y"}},
	}
	for _, tc := range tests {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// TestMetricsListed checks that every metric the dashboard and the rules select is in
// metrics.txt (a histogram through its _bucket, _sum and _count series) or is one of the
// recording rules, and that the dashboard shows every hotline_* metric listed there.
func TestMetricsListed(t *testing.T) {
	known := metricList(t)
	rf := loadRules(t)
	recorded := map[string]bool{}
	var qs []query
	for _, g := range rf.Groups {
		for i, r := range g.Rules {
			name := r.Record + r.Alert
			if r.Record != "" {
				recorded[r.Record] = true
			}
			qs = append(qs, query{fmt.Sprintf("%s group %s rule %d %s", rulesFile, g.Name, i, name), r.Expr})
		}
	}
	if len(recorded) == 0 {
		t.Fatalf("%s: no recording rules read", rulesFile)
	}
	dashQueries := loadDashboard(t).queries(t)
	qs = append(qs, dashQueries...)

	used := map[string]bool{}
	for _, q := range qs {
		names := metricNames(q.expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric name found in %q", q.where, q.expr)
		}
		for _, n := range names {
			base, ok := listedAs(known, n)
			switch {
			case ok:
				if strings.HasPrefix(q.where, "panel") || strings.HasPrefix(q.where, "variable") {
					used[base] = true
				}
			case recorded[n]:
			default:
				t.Errorf("%s: metric %s is not in %s (nor a recording rule of %s)", q.where, n, metricsFile, rulesFile)
			}
		}
	}
	var unshown []string
	for n := range known {
		if strings.HasPrefix(n, "hotline_") && !used[n] {
			unshown = append(unshown, n)
		}
	}
	sort.Strings(unshown)
	if len(unshown) > 0 {
		t.Errorf("no dashboard panel shows %s", strings.Join(unshown, ", "))
	}
}

// listedAs returns the listed metric that the series name n belongs to.
func listedAs(known map[string]string, n string) (string, bool) {
	if _, ok := known[n]; ok {
		return n, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, found := strings.CutSuffix(n, suffix)
		if found && known[base] == "histogram" {
			return base, true
		}
	}
	return "", false
}

func TestListedAs(t *testing.T) {
	known := map[string]string{"h_seconds": "histogram", "c_total": "counter", "g": "gauge"}
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"h_seconds_bucket", "h_seconds", true},
		{"h_seconds_count", "h_seconds", true},
		{"c_total", "c_total", true},
		{"c_total_bucket", "", false}, // not a histogram
		{"g_sum", "", false},
		{"other", "", false},
	}
	for _, tc := range tests {
		if got, ok := listedAs(known, tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("listedAs(%q) = %q, %v, want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// TestKamailioConfig checks that the sample Kamailio front parses (kamailio -c), so that
// operators copy a working file.
func TestKamailioConfig(t *testing.T) {
	kamailio := lookTool(t, "kamailio", "kamailio")
	out, err := exec.Command(kamailio, "-c", "-f", filepath.Join("kamailio", "kamailio.cfg")).CombinedOutput()
	if err != nil {
		t.Fatalf("kamailio -c: %v\n%s", err, out)
	}
}

// TestSystemdUnit checks the unit with systemd-analyze when it is there (not in every
// container), and that it runs the server the way the README says.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("systemd", "hotline.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/local/bin/hotline serve -config /etc/hotline/hotline.yaml",
		"ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM", "TimeoutStopSec=35min"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("hotline.service lacks %q", want)
		}
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		out, _ := exec.Command(sa, "verify", "--man=no", filepath.Join("systemd", "hotline.service")).CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			// The binary is not installed on a build machine; anything else is a mistake.
			if strings.Contains(line, "hotline.service:") && !strings.Contains(line, "is not executable") {
				t.Errorf("systemd-analyze verify: %s", line)
			}
		}
	}
}
