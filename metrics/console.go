package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// consoleSignInResults are the results Console.SignIn labels; anything else is "other".
var consoleSignInResults = map[string]bool{"ok": true, "refused": true, "banned": true}

// Console counts the browser console's sign-ins and reports its sessions.
type Console struct {
	signIns *prometheus.CounterVec
}

// NewConsole registers the console's collectors on r (nil: working, not exported).
// sessions, if not nil, is read at scrape time for the number of sessions signed in.
func NewConsole(r prometheus.Registerer, sessions func() int) *Console {
	f := promauto.With(r)
	c := &Console{
		signIns: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "console", Name: "sign_ins_total",
			Help: "Sign-ins to the browser console, by result: ok; refused (wrong id or password, counted towards the source's ban); banned (the source is banned for failing too often).",
		}, []string{"result"}),
	}
	for r := range consoleSignInResults {
		c.signIns.WithLabelValues(r)
	}
	if sessions != nil {
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "console", Name: "sessions",
			Help: "Browser console sessions signed in now.",
		}, func() float64 { return float64(sessions()) })
	}
	return c
}

// SignIn counts a sign-in by result: ok, refused or banned.
func (c *Console) SignIn(result string) {
	if !consoleSignInResults[result] {
		result = "other"
	}
	c.signIns.WithLabelValues(result).Inc()
}

// NewConsolePhones registers hotline_console_phones on r: phones() is read at scrape time
// for the number of advocates with the phone in a page on (console.phone).
func NewConsolePhones(r prometheus.Registerer, phones func() int) {
	promauto.With(r).NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: "console", Name: "phones",
		Help: "Advocates with the phone in a console page on (they are rung there over WebRTC).",
	}, func() float64 { return float64(phones()) })
}
