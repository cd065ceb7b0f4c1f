package main

import (
	"errors"
	"os"
	"testing"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want uint64
		err  bool
	}{
		{"plain", "1234 (hotline) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 1000 200", 325, false},
		{"name with spaces and parens", "7 (a) b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1", 7, false},
		{"no name", "1234 S 1", 0, true},
		{"short", "1 (x) S 1 2 3", 0, true},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 4 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("parseStat = %d, %v; want %d, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestParseRSS(t *testing.T) {
	got, err := parseRSS([]byte("Name:\thotline\nVmPeak:\t 9 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n"))
	if err != nil || got != 20480*1024 {
		t.Fatalf("parseRSS = %d, %v; want %d", got, err, 20480*1024)
	}
	if _, err := parseRSS([]byte("Name:\tx\n")); !errors.Is(err, errFormat) {
		t.Fatalf("no VmRSS: err = %v, want errFormat", err)
	}
	if _, err := parseRSS([]byte("VmRSS: 12 MB\n")); !errors.Is(err, errFormat) {
		t.Fatalf("VmRSS in MB: err = %v, want errFormat", err)
	}
}

// TestSampleProcSelf reads this test process's own /proc entries.
func TestSampleProcSelf(t *testing.T) {
	s, err := sampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.rss == 0 {
		t.Fatal("rss = 0 for a running process")
	}
}

func TestMetricSum(t *testing.T) {
	text := `# HELP hotline_calls_active Calls in progress, by line.
# TYPE hotline_calls_active gauge
hotline_calls_active{line="main"} 3
hotline_calls_active{line="other",x="a}b"} 4
hotline_calls_active_total 100
hotline_calls_activex{line="x"} 100
`
	tests := []struct {
		name  string
		want  float64
		found bool
	}{
		{"hotline_calls_active", 7, true},
		{"hotline_calls_active_total", 100, true},
		{"hotline_missing", 0, false},
	}
	for _, tt := range tests {
		got, found := metricSum([]byte(text), tt.name)
		if got != tt.want || found != tt.found {
			t.Errorf("metricSum(%s) = %v, %v; want %v, %v", tt.name, got, found, tt.want, tt.found)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1234 (hotline) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 1000 200"))
	f.Add([]byte("1 ()) S"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseStat(b)
		if err != nil && v != 0 {
			t.Fatalf("both a value %d and an error %v", v, err)
		}
	})
}

func FuzzParseRSS(f *testing.F) {
	f.Add([]byte("VmRSS:\t 20480 kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseRSS(b)
		if err != nil && v != 0 {
			t.Fatalf("both a value %d and an error %v", v, err)
		}
	})
}

func FuzzMetricSum(f *testing.F) {
	f.Add([]byte("hotline_calls_active{line=\"main\"} 3\n"), "hotline_calls_active")
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		if v, found := metricSum(b, name); !found && v != 0 {
			t.Fatalf("not found but sum %v", v)
		}
	})
}
