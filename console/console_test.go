package console

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/sip/defence"
)

const realm = "hotline"

func ha1(h func() []byte) string { return hex.EncodeToString(h()) }

func sha(id, pw string) string {
	return ha1(func() []byte { s := sha256.Sum256([]byte(id + ":" + realm + ":" + pw)); return s[:] })
}

func md(id, pw string) string {
	return ha1(func() []byte { s := md5.Sum([]byte(id + ":" + realm + ":" + pw)); return s[:] })
}

// fakeDesk is the call flow with two advocates; ana is ringing for call "c1".
type fakeDesk struct {
	mu    sync.Mutex
	state map[string]queue.State

	pressed     []string // "advocate feature"
	supervising *Supervision
}

func (d *fakeDesk) Advocates() (time.Time, queue.Snapshot) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Unix(1_700_000_000, 0)
	s := queue.Snapshot{Queues: []queue.QueueSnapshot{{Name: "en", Languages: []string{"en"}, Waiting: 1,
		OldestWait: 12 * time.Second, Advocates: map[queue.State]int{queue.Ringing: 1},
		ByLanguage: map[string]map[queue.State]int{"en": {queue.Ringing: 1}}}}}
	for _, id := range []string{"ana", "sam"} {
		a := queue.AdvocateSnapshot{ID: id, Languages: []string{"en"}, State: d.state[id], Since: now}
		if a.State == queue.Ringing || a.State == queue.OnCall {
			a.Call, a.Queue = "c1-secret-call-id", "en"
		}
		s.Advocates = append(s.Advocates, a)
	}
	return now, s
}

func (d *fakeDesk) SetState(id, state, _ string) (queue.AdvocateSnapshot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var st queue.State
	if err := st.UnmarshalText([]byte(state)); err != nil {
		return queue.AdvocateSnapshot{}, err
	}
	d.state[id] = st
	return queue.AdvocateSnapshot{ID: id, State: st}, nil
}

func (d *fakeDesk) HangUp(_ context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state[id] != queue.OnCall {
		return ErrNoCall
	}
	d.state[id] = queue.Available
	return nil
}

func (d *fakeDesk) Features(string) []Feature {
	return []Feature{{ID: "party:9", Label: "911", Kind: "emergency"}, {ID: "drop", Label: "Drop the last party", Kind: "drop"}}
}

func (d *fakeDesk) Feature(_ context.Context, id, f string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state[id] != queue.OnCall {
		return ErrNoCall
	}
	if f != "party:9" && f != "drop" {
		return ErrNoFeature
	}
	d.pressed = append(d.pressed, id+" "+f)
	return nil
}

func (d *fakeDesk) Supervise(_ context.Context, sup, adv, mode string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state[adv] != queue.OnCall {
		return fmt.Errorf("%w: %s is on no call", ErrCannotSupervise, adv)
	}
	d.supervising = &Supervision{Advocate: adv, Mode: mode}
	return nil
}

func (d *fakeDesk) Supervising(string) (Supervision, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.supervising == nil {
		return Supervision{}, false
	}
	return *d.supervising, true
}

func (d *fakeDesk) CallCard(id string) (CallCard, bool) {
	if id != "c1-secret-call-id" {
		return CallCard{}, false
	}
	return CallCard{Queue: "en", Language: "en", Reason: "help_now", Since: time.Unix(1_699_999_988, 0)}, true
}

func (d *fakeDesk) get(id string) queue.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state[id]
}

type countMetrics struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countMetrics) SignIn(r string) { c.mu.Lock(); c.n[r]++; c.mu.Unlock() }
func (c *countMetrics) get(r string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[r]
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	srv     *httptest.Server
	cs      *Server
	desk    *fakeDesk
	metrics *countMetrics
	clock   *fakeClock
	limiter *defence.Limiter

	pmu      sync.Mutex
	presence map[string]bool // OnPhone's last word per advocate
	noPhone  atomic.Bool     // console.phone: false
}

func (f *fixture) online(id string) bool {
	f.pmu.Lock()
	defer f.pmu.Unlock()
	return f.presence[id]
}

func newFixture(t testing.TB, tls bool) *fixture {
	t.Helper()
	f := &fixture{
		desk:    &fakeDesk{state: map[string]queue.State{"ana": queue.Ringing, "sam": queue.Offline}},
		metrics: &countMetrics{n: map[string]int{}},
		clock:   &fakeClock{t: time.Unix(1_700_000_000, 0)},

		presence: map[string]bool{},
	}
	var err error
	f.limiter, err = defence.New(defence.Config{AuthFailures: 3, AuthWindow: time.Minute, BanFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	accounts := map[string]Account{
		"ana": {ID: "ana", Name: "Ana", Role: "advocate", HA1SHA256: sha("ana", "ana-pw")},
		"sam": {ID: "sam", Name: "Sam", Role: RoleSupervisor, HA1MD5: md("sam", "sam-pw")},
	}
	cs, err := New(Options{
		Accounts:     func(id string) (Account, bool) { a, ok := accounts[id]; return a, ok },
		Realm:        func() string { return realm },
		PauseReasons: func() []string { return []string{"break", "meal"} },
		ServiceLevel: func(string) time.Duration { return 20 * time.Second },
		Desk:         f.desk,
		Limiter:      f.limiter,
		Stats:        NewStats(f.clock.Now, func(string) time.Duration { return 20 * time.Second }),
		Metrics:      f.metrics,
		IdleTimeout:  func() time.Duration { return 10 * time.Minute },
		Now:          f.clock.Now,
		Tick:         20 * time.Millisecond,
		PhoneEnabled: func() bool { return !f.noPhone.Load() },
		OnPhone: func(id string, on bool) {
			f.pmu.Lock()
			f.presence[id] = on
			f.pmu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.cs = cs
	if tls {
		f.srv = httptest.NewTLSServer(cs.Handler())
	} else {
		f.srv = httptest.NewServer(cs.Handler())
	}
	t.Cleanup(f.srv.Close)
	return f
}

// client is a browser: a cookie jar, and the CSRF token of its session.
type client struct {
	t    *testing.T
	f    *fixture
	http *http.Client
	csrf string
}

func (f *fixture) client(t *testing.T) *client {
	jar, _ := cookiejar.New(nil)
	hc := *f.srv.Client() // a browser of its own: the server's client is shared
	hc.Jar = jar
	return &client{t: t, f: f, http: &hc}
}

func (c *client) do(method, path, body string, hdr ...string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *client) signIn(id, pw string) (int, string) {
	c.t.Helper()
	code, body := c.do("POST", "/console/api/signin", fmt.Sprintf(`{"id":%q,"password":%q}`, id, pw))
	if code == http.StatusOK {
		var me meBody
		if err := json.Unmarshal([]byte(body), &me); err != nil {
			c.t.Fatal(err)
		}
		c.csrf = me.CSRF
	}
	return code, body
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		name string
		a    Account
		pw   string
		want bool
	}{
		{"sha256 right", Account{ID: "ana", HA1SHA256: sha("ana", "pw")}, "pw", true},
		{"sha256 wrong", Account{ID: "ana", HA1SHA256: sha("ana", "pw")}, "pw2", false},
		{"md5 right", Account{ID: "ana", HA1MD5: md("ana", "pw")}, "pw", true},
		{"md5 wrong", Account{ID: "ana", HA1MD5: md("ana", "pw")}, "", false},
		{"sha256 preferred", Account{ID: "ana", HA1SHA256: sha("ana", "pw"), HA1MD5: md("ana", "other")}, "pw", true},
		{"no ha1", Account{ID: "ana"}, "", false},
		{"other id's hash", Account{ID: "bob", HA1SHA256: sha("ana", "pw")}, "pw", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkPassword(tt.a, realm, tt.pw); got != tt.want {
				t.Errorf("checkPassword = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSignIn(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	for _, tt := range []struct{ id, pw string }{{"ana", "wrong"}, {"nobody", "ana-pw"}} {
		if code, body := c.signIn(tt.id, tt.pw); code != http.StatusUnauthorized || !strings.Contains(body, "wrong id or password") {
			t.Fatalf("sign-in %s/%s: %d %s, want 401", tt.id, tt.pw, code, body)
		}
	}
	if got := f.metrics.get("refused"); got != 2 {
		t.Errorf("refused sign-ins counted %d, want 2", got)
	}
	if code, _ := c.do("GET", "/console/api/me", ""); code != http.StatusUnauthorized {
		t.Fatalf("me before sign-in: %d, want 401", code)
	}
	code, body := c.signIn("ana", "ana-pw")
	if code != http.StatusOK || !strings.Contains(body, `"role":"advocate"`) {
		t.Fatalf("sign-in: %d %s", code, body)
	}
	if f.metrics.get("ok") != 1 {
		t.Errorf("ok sign-ins %d, want 1", f.metrics.get("ok"))
	}
	// The cookie: HttpOnly, SameSite=Strict, scoped to /console/, not Secure without TLS.
	resp, err := f.client(t).http.Post(f.srv.URL+"/console/api/signin", "application/json", strings.NewReader(`{"id":"sam","password":"sam-pw"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"hotline_console=", "HttpOnly", "SameSite=Strict", "Path=/console/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("Set-Cookie %q is Secure without TLS", sc)
	}
	if code, _ := c.do("POST", "/console/api/signout", ""); code != http.StatusNoContent {
		t.Fatalf("sign-out: %d", code)
	}
	if code, _ := c.do("GET", "/console/api/me", ""); code != http.StatusUnauthorized {
		t.Fatalf("me after sign-out: %d, want 401", code)
	}
}

func TestSecureCookieUnderTLS(t *testing.T) {
	f := newFixture(t, true)
	resp, err := f.srv.Client().Post(f.srv.URL+"/console/api/signin", "application/json", strings.NewReader(`{"id":"ana","password":"ana-pw"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sc := resp.Header.Get("Set-Cookie"); resp.StatusCode != 200 || !strings.Contains(sc, "Secure") {
		t.Fatalf("sign-in over TLS: %d, Set-Cookie %q: want Secure", resp.StatusCode, sc)
	}
}

// Failed sign-ins count towards the per-source ban shared with SIP digest authentication:
// after three, even the right password is refused.
func TestSignInBan(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	for i := 0; i < 3; i++ {
		if code, _ := c.signIn("ana", "guess"); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, code)
		}
	}
	code, body := c.signIn("ana", "ana-pw")
	if code != http.StatusTooManyRequests || !strings.Contains(body, "too many failed sign-ins") {
		t.Fatalf("after 3 failures: %d %s, want 429", code, body)
	}
	if f.metrics.get("banned") != 1 || f.metrics.get("refused") != 3 {
		t.Errorf("metrics banned=%d refused=%d, want 1 and 3", f.metrics.get("banned"), f.metrics.get("refused"))
	}
	if _, failures, bans, _ := f.limiter.Sources(); bans != 1 {
		t.Errorf("limiter has %d bans (%d failure records), want 1", bans, failures)
	}
	f.clock.Add(2 * time.Hour) // the ban lapses
	if code, _ := c.signIn("ana", "ana-pw"); code != http.StatusOK {
		t.Fatalf("after the ban: %d, want 200", code)
	}
}

func TestChangesNeedCSRFAndSameOrigin(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	if code, _ := c.signIn("ana", "ana-pw"); code != http.StatusOK {
		t.Fatal("sign-in failed")
	}
	good := c.csrf
	tests := []struct {
		name string
		csrf string
		hdr  []string
		want int
	}{
		{"no token", "", nil, http.StatusForbidden},
		{"forged token", "AAAAAAAAAAAAAAAAAAAAAAAAAA", nil, http.StatusForbidden},
		{"cross-origin Origin", good, []string{"Origin", "http://evil.example"}, http.StatusForbidden},
		{"cross-site fetch", good, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"same origin", good, []string{"Sec-Fetch-Site", "same-origin"}, http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.desk.SetState("ana", "offline", "")
			c.csrf = tt.csrf
			code, body := c.do("POST", "/console/api/state", `{"state":"available"}`, tt.hdr...)
			if code != tt.want {
				t.Fatalf("%d %s, want %d", code, body, tt.want)
			}
			want := queue.Offline
			if tt.want == http.StatusNoContent {
				want = queue.Available
			}
			if got := f.desk.get("ana"); got != want {
				t.Errorf("ana is %s, want %s", got, want)
			}
		})
	}
	// The event stream refuses another origin too.
	c.csrf = good
	if code, _ := c.do("GET", "/console/api/events", "", "Sec-Fetch-Site", "cross-site"); code != http.StatusForbidden {
		t.Errorf("cross-site event stream: %d, want 403", code)
	}
	if code, _ := c.do("GET", "/console/api/events", "", "Origin", "http://evil.example"); code != http.StatusForbidden {
		t.Errorf("event stream from another Origin: %d, want 403", code)
	}
}

func TestStateRules(t *testing.T) {
	f := newFixture(t, false)
	ana, sam := f.client(t), f.client(t)
	ana.signIn("ana", "ana-pw")
	sam.signIn("sam", "sam-pw")
	tests := []struct {
		who  *client
		body string
		want int
	}{
		{ana, `{"advocate":"sam","state":"available"}`, http.StatusForbidden}, // not a supervisor
		{ana, `{"state":"paused","reason":"nap"}`, http.StatusBadRequest},     // not a configured reason
		{ana, `{"state":"ringing"}`, http.StatusBadRequest},
		{ana, `{"state":"available","x":1}`, http.StatusBadRequest},
		{ana, `{"state":"paused","reason":"meal"}`, http.StatusNoContent},
		{sam, `{"advocate":"ana","state":"available"}`, http.StatusNoContent},
	}
	for i, tt := range tests {
		if code, body := tt.who.do("POST", "/console/api/state", tt.body); code != tt.want {
			t.Errorf("%d: %s: %d %s, want %d", i, tt.body, code, body, tt.want)
		}
	}
	if got := f.desk.get("ana"); got != queue.Available {
		t.Errorf("ana is %s, want available (set by the supervisor)", got)
	}
}

func TestIdleSessionExpires(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	c.signIn("ana", "ana-pw")
	f.clock.Add(9 * time.Minute)
	if code, _ := c.do("POST", "/console/api/touch", ""); code != http.StatusNoContent {
		t.Fatalf("touch within the idle timeout: %d", code)
	}
	f.clock.Add(9 * time.Minute) // 18 minutes since sign-in, 9 since used
	if code, _ := c.do("GET", "/console/api/me", ""); code != http.StatusOK {
		t.Fatalf("me 9 minutes after use: %d, want 200", code)
	}
	f.clock.Add(10 * time.Minute)
	code, body := c.do("POST", "/console/api/state", `{"state":"available"}`)
	if code != http.StatusUnauthorized || !strings.Contains(body, "session expired") {
		t.Fatalf("after the idle timeout: %d %s, want 401 session expired", code, body)
	}
}

// sse reads an event stream.
type sse struct {
	resp *http.Response
	r    *bufio.Reader
	tab  string // the page's name, from the stream's "tab" event
}

func (c *client) events(ctx context.Context) *sse {
	c.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.f.srv.URL+"/console/api/events", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("events: %d", resp.StatusCode)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	return &sse{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event's name and data.
func (s *sse) next(t *testing.T) (string, string) {
	t.Helper()
	var ev, data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			ev = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		case line == "" && ev == "tab":
			s.tab = strings.TrimSuffix(strings.TrimPrefix(data, `{"tab":"`), `"}`)
			ev, data = "", ""
		case line == "" && ev != "":
			return ev, data
		}
	}
}

func TestEventsViewsAndPrivacy(t *testing.T) {
	f := newFixture(t, false)
	ana, sam := f.client(t), f.client(t)
	ana.signIn("ana", "ana-pw")
	sam.signIn("sam", "sam-pw")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ev, data := ana.events(ctx).next(t)
	if ev != "view" {
		t.Fatalf("first event %q", ev)
	}
	var v view
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatal(err)
	}
	if v.Me == nil || v.Me.State != "ringing" || v.Call == nil || v.Call.Queue != "en" || v.Call.Reason != "help_now" ||
		!v.Call.Ringing || v.Call.Since != time.Unix(1_699_999_988, 0).UnixMilli() {
		t.Fatalf("advocate's view %s", data)
	}
	if len(v.Queues) != 0 || len(v.Advocates) != 0 {
		t.Errorf("an advocate sees the wallboard: %s", data)
	}
	if strings.Contains(data, "secret") {
		t.Errorf("the view carries the call id: %s", data)
	}

	st := sam.events(ctx)
	_, data = st.next(t)
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Queues) != 1 || v.Queues[0].Waiting != 1 || v.Queues[0].OldestSince == 0 || len(v.Advocates) != 2 {
		t.Fatalf("supervisor's view %s", data)
	}
	// A change shows on the stream.
	ana.do("POST", "/console/api/state", `{"state":"available"}`)
	_, data = st.next(t)
	if !strings.Contains(data, `"id":"ana","name":"","languages":["en"],"state":"available"`) {
		t.Errorf("after ana became available the supervisor sees %s", data)
	}

	// A second tab takes over; the first is told so.
	sam.events(ctx)
	if ev, _ := st.next(t); ev != "replaced" {
		t.Errorf("first tab got %q, want replaced", ev)
	}
}

func TestEventsEndWhenSessionExpires(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	c.signIn("ana", "ana-pw")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := c.events(ctx)
	if ev, _ := s.next(t); ev != "view" {
		t.Fatalf("first event %q", ev)
	}
	f.clock.Add(11 * time.Minute)
	if ev, _ := s.next(t); ev != "expired" {
		t.Fatalf("after the idle timeout: %q, want expired", ev)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/console/api/events", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("reconnect after expiry: %d, want 401", resp.StatusCode)
	}
}

func TestStaticPage(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	for _, p := range []string{"/console/", "/console/app.js", "/console/style.css"} {
		code, body := c.do("GET", p, "")
		if code != http.StatusOK || len(body) < 100 {
			t.Errorf("GET %s: %d (%d bytes)", p, code, len(body))
		}
	}
}

func TestStatsDay(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 12, 4, 23, 59, 0, 0, time.Local)}
	s := NewStats(clk.Now, func(string) time.Duration { return 20 * time.Second })
	s.Answered("en", "ana", 5*time.Second)
	s.Answered("en", "ana", 50*time.Second)
	s.Abandoned("en", time.Second)
	if a, b, w := s.Today("en"); a != 2 || b != 1 || w != 1 {
		t.Fatalf("today: %d answered, %d abandoned, %d within; want 2, 1, 1", a, b, w)
	}
	clk.Add(2 * time.Minute) // past midnight
	if a, b, w := s.Today("en"); a+b+w != 0 {
		t.Fatalf("a new day starts at %d, %d, %d", a, b, w)
	}
}

func TestHangUp(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	c.signIn("ana", "ana-pw")
	if code, body := c.do("POST", "/console/api/hangup", ""); code != http.StatusConflict || !strings.Contains(body, "no call") {
		t.Fatalf("hang-up while ringing: %d %s, want 409", code, body)
	}
	f.desk.SetState("ana", "on_call", "")
	csrf := c.csrf
	c.csrf = ""
	if code, _ := c.do("POST", "/console/api/hangup", ""); code != http.StatusForbidden {
		t.Fatalf("hang-up without the CSRF token: %d, want 403", code)
	}
	c.csrf = csrf
	if code, _ := c.do("POST", "/console/api/hangup", ""); code != http.StatusNoContent {
		t.Fatalf("hang-up: %d", code)
	}
	if got := f.desk.get("ana"); got != queue.Available {
		t.Errorf("after hang-up ana is %s", got)
	}
}

// A reconnect (after a network blip) gets the whole view at once, with what changed while
// the page was away.
func TestReconnectRestoresView(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	c.signIn("sam", "sam-pw")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, drop := context.WithCancel(ctx)
	s := c.events(first)
	if ev, _ := s.next(t); ev != "view" {
		t.Fatalf("first event %q", ev)
	}
	drop() // the blip
	f.desk.SetState("ana", "paused", "")
	ev, data := c.events(ctx).next(t)
	if ev != "view" || !strings.Contains(data, `"id":"ana","name":"","languages":["en"],"state":"paused"`) ||
		!strings.Contains(data, `"queues":[{"name":"en"`) {
		t.Fatalf("after reconnecting: %s %s", ev, data)
	}
}

// Sign-ins being checked count against the limit with the failures: a brute-forcer's
// sign-ins sent together cannot all be checked before the first failures count. With two
// failures and one sign-in in flight (auth_failures 3), the next is refused unchecked,
// even with the right password; once the one in flight ends well, it goes through.
func TestSignInsInFlightCountAgainstTheLimit(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	for i := range 2 {
		if code, _ := c.signIn("ana", "guess"); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, code)
		}
	}
	src := netip.MustParseAddr("127.0.0.1")
	if !f.limiter.BeginAuth(f.clock.Now(), src) { // a third sign-in, being checked
		t.Fatal("the third check refused")
	}
	code, body := c.signIn("ana", "ana-pw")
	if code != http.StatusTooManyRequests || !strings.Contains(body, "too many failed sign-ins") {
		t.Fatalf("with a third check in flight: %d %s, want 429", code, body)
	}
	if f.metrics.get("refused") != 2 {
		t.Errorf("refused = %d, want 2: the password was checked", f.metrics.get("refused"))
	}
	f.limiter.EndAuth(f.clock.Now(), src, false) // it ended well
	if code, _ := c.signIn("ana", "ana-pw"); code != http.StatusOK {
		t.Fatalf("after the check in flight ended: %d, want 200", code)
	}
}
