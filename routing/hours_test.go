package routing

import (
	"testing"
	"time"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		in      string
		want    Range
		night   bool
		wantErr string
	}{
		{in: "08:00-17:30", want: Range{480, 1050}},
		{in: "00:00-24:00", want: Range{0, 1440}},
		{in: "22:00-06:00", want: Range{1320, 360}, night: true},
		{in: "23:59-00:01", want: Range{1439, 1}, night: true},
		{in: "06:00-00:00", want: Range{360, 1440}}, // 00:00 as an end is midnight
		{in: "22:00-24:00", want: Range{1320, 1440}},
		{in: "08:00-08:00", wantErr: `"08:00-08:00" starts and ends at the same time; write 00:00-24:00 for the whole day`},
		{in: "00:00-00:00", wantErr: `"00:00-00:00" starts and ends at the same time; write 00:00-24:00 for the whole day`},
		{in: "24:00-06:00", wantErr: `"24:00-06:00": start: 24:00 can only end a range; write 00:00`},
		{in: "8:00-17:00", wantErr: `"8:00-17:00" is not a time range like 08:00-17:00`},
		{in: "08:00 - 17:00", wantErr: `"08:00 - 17:00" is not a time range like 08:00-17:00`},
		{in: "08:60-17:00", wantErr: `"08:60-17:00": start: not a time of day HH:MM from 00:00 to 24:00`},
		{in: "08:00-24:01", wantErr: `"08:00-24:01": end: not a time of day HH:MM from 00:00 to 24:00`},
		{in: "08:00-25:00", wantErr: `"08:00-25:00": end: not a time of day HH:MM from 00:00 to 24:00`},
		{in: "0a:00-17:00", wantErr: `"0a:00-17:00": start: not a time of day HH:MM from 00:00 to 24:00`},
		{in: "08.00-17.00", wantErr: `"08.00-17.00": start: not a time of day HH:MM from 00:00 to 24:00`},
		{in: "", wantErr: `"" is not a time range like 08:00-17:00`},
	}
	for _, tt := range tests {
		got, err := ParseRange(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseRange(%q) = %v, %v; want error %s", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want || got.Overnight() != tt.night {
			t.Errorf("ParseRange(%q) = %v (overnight %v), %v; want %v (overnight %v)", tt.in, got, got.Overnight(), err, tt.want, tt.night)
		}
	}
}

func TestRangeOverlaps(t *testing.T) {
	tests := []struct {
		a, b        string
		want, daily bool // on one day; when both repeat every day
	}{
		{"08:00-12:00", "12:00-14:00", false, false}, // touching is fine
		{"08:00-12:00", "11:00-14:00", true, true},
		{"08:00-12:00", "09:00-10:00", true, true},
		{"22:00-06:00", "06:00-08:00", false, false},
		{"22:00-06:00", "05:00-08:00", false, true}, // the night runs into the next morning's range
		{"22:00-06:00", "23:00-24:00", true, true},
		{"20:00-22:00", "22:00-02:00", false, false},
		{"22:00-02:00", "23:00-01:00", true, true},
		{"00:00-24:00", "23:00-01:00", true, true},
		{"00:00-24:00", "00:00-24:00", true, true},
		{"12:00-00:00", "00:00-12:00", false, false},
	}
	for _, tt := range tests {
		a, b := mustRange(t, tt.a), mustRange(t, tt.b)
		for _, daily := range []bool{false, true} {
			want := tt.want
			if daily {
				want = tt.daily
			}
			if got := a.overlaps(b, daily); got != want {
				t.Errorf("%s overlaps %s (daily %v) = %v, want %v", a, b, daily, got, want)
			}
			if got := b.overlaps(a, daily); got != want {
				t.Errorf("%s overlaps %s (daily %v) = %v, want %v", b, a, daily, got, want)
			}
		}
	}
}

func mustRange(t *testing.T, s string) Range {
	t.Helper()
	r, err := ParseRange(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in      string
		want    Date
		wantErr string
	}{
		{in: "2026-12-24", want: Date{2026, time.December, 24}},
		{in: "12-25", want: Date{0, time.December, 25}},
		{in: "02-29", want: Date{0, time.February, 29}}, // leap years only
		{in: "2028-02-29", want: Date{2028, time.February, 29}},
		{in: "2026-02-29", wantErr: `"2026-02-29" is not a day of the calendar`},
		{in: "02-30", wantErr: `"02-30" is not a day of the calendar`},
		{in: "13-01", wantErr: `"13-01" is not a day of the calendar`},
		{in: "00-10", wantErr: `"00-10" is not a day of the calendar`},
		{in: "2026-04-31", wantErr: `"2026-04-31" is not a day of the calendar`},
		{in: "0000-01-01", wantErr: `"0000-01-01" is not a date like 2026-12-24 (that day) or 12-25 (every year)`},
		{in: "2026/12/24", wantErr: `"2026/12/24" is not a date like 2026-12-24 (that day) or 12-25 (every year)`},
		{in: "12/25", wantErr: `"12/25" is not a date like 2026-12-24 (that day) or 12-25 (every year)`},
		{in: "Dec 25", wantErr: `"Dec 25" is not a date like 2026-12-24 (that day) or 12-25 (every year)`},
		{in: "2026-1-02", wantErr: `"2026-1-02" is not a date like 2026-12-24 (that day) or 12-25 (every year)`},
		{in: "", wantErr: `"" is not a date like 2026-12-24 (that day) or 12-25 (every year)`},
	}
	for _, tt := range tests {
		got, err := ParseDate(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseDate(%q) = %v, %v; want error %s", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want || got.String() != tt.in {
			t.Errorf("ParseDate(%q) = %v (%s), %v; want %v", tt.in, got, got, err, tt.want)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"08:00-17:30", "22:00-06:00", "00:00-24:00", "06:00-00:00", "24:00-01:00", "9:00-17:00", "23:59-23:58"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			if r != (Range{}) {
				t.Fatalf("ParseRange(%q) returned %v with error %v", s, r, err)
			}
			return
		}
		if r.Start < 0 || r.Start >= minutesPerDay || r.End <= 0 || r.End > minutesPerDay || r.Start == r.End {
			t.Fatalf("ParseRange(%q) = %+v, out of bounds", s, r)
		}
		// Print and parse again.
		r2, err := ParseRange(r.String())
		if err != nil || r2 != r {
			t.Fatalf("ParseRange(%q) = %v, but ParseRange(%q) = %v, %v", s, r, r.String(), r2, err)
		}
		if start, end := r.spans(); end-start <= 0 || end-start > minutesPerDay {
			t.Fatalf("%v spans %d..%d", r, start, end)
		}
	})
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2026-12-24", "12-25", "02-29", "2026-02-29", "9999-12-31", "0001-01-01", "00-00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if err != nil {
			if d != (Date{}) {
				t.Fatalf("ParseDate(%q) returned %v with error %v", s, d, err)
			}
			return
		}
		if d.String() != s {
			t.Fatalf("ParseDate(%q) prints as %q", s, d.String())
		}
		if d.Year != 0 {
			if y, m, day := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Date(); y != d.Year || m != d.Month || day != d.Day {
				t.Fatalf("ParseDate(%q) = %v, not a real date", s, d)
			}
		}
	})
}
