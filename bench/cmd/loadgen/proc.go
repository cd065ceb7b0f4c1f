package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; it is 100 on every
// Linux architecture Go supports.
const clockTicks = 100

var errFormat = errors.New("unexpected format")

// parseStat returns utime+stime, in clock ticks, from the text of /proc/PID/stat.
func parseStat(b []byte) (uint64, error) {
	// The command name (field 2) is in parentheses and may hold spaces or ')': the fields
	// we want come after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no ')': %w", errFormat)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the name: %w", len(f), errFormat)
	}
	u, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat utime: %w", err)
	}
	s, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat stime: %w", err)
	}
	return u + s, nil
}

// parseRSS returns VmRSS in bytes from the text of /proc/PID/status.
func parseRSS(b []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status VmRSS %q: %w", rest, errFormat)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status VmRSS: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("status: no VmRSS: %w", errFormat)
}

// procSample is a process's CPU time and resident memory at one moment.
type procSample struct {
	at  time.Time
	cpu time.Duration
	rss uint64
}

// sampleProc reads /proc for pid; pid 0 gives a zero sample (no server to watch).
func sampleProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	if pid == 0 {
		return s, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("server cpu: %w", err)
	}
	ticks, err := parseStat(b)
	if err != nil {
		return s, err
	}
	s.cpu = time.Duration(ticks) * time.Second / clockTicks
	if b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err != nil {
		return s, fmt.Errorf("server rss: %w", err)
	}
	s.rss, err = parseRSS(b)
	return s, err
}

// loadAvg returns the 1-minute load average.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// metricSum adds up the samples of the metric name (any labels) in a Prometheus text
// exposition.
func metricSum(text []byte, name string) (float64, bool) {
	var sum float64
	var found bool
	for line := range strings.Lines(string(text)) {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		if rest[0] == '{' {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// scrape fetches url and returns the sum of metric name.
func scrape(url, name string) (float64, error) {
	b, err := scrapeText(url)
	if err != nil {
		return 0, err
	}
	v, _ := metricSum(b, name)
	return v, nil
}

// pacingLate reads the server's pacing histogram: scheduler slots run so far, and those
// that started more than 10 ms late.
func pacingLate(url string) (total, late float64, err error) {
	b, err := scrapeText(url)
	if err != nil {
		return 0, 0, err
	}
	total, _ = metricSum(b, "hotline_rtp_pacing_error_seconds_count")
	onTime, _ := metricSum(b, `hotline_rtp_pacing_error_seconds_bucket{le="0.01"}`)
	return total, total - onTime, nil
}

// scrapeText fetches url.
func scrapeText(url string) ([]byte, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	res, err := cl.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	return b, nil
}
