package sip

import (
	"log/slog"
	"testing"
)

// TestCallFilterDigits: a digit filter sees the digits queued before it was set and every
// digit after; those it takes never reach Digits, the others keep their order. The call
// flow watches the quick-exit key this way, without a goroutine per call (issue 15).
func TestCallFilterDigits(t *testing.T) {
	c := &Call{digits: make(chan rune, digitBuffer), log: slog.New(slog.DiscardHandler)}
	for _, d := range "1#2" {
		c.pushDigit(d)
	}
	var seen []rune
	if !c.FilterDigits(func(d rune) bool { seen = append(seen, d); return d == '#' }) {
		t.Fatal("FilterDigits reported false")
	}
	for _, d := range "3#4" {
		c.pushDigit(d)
	}
	c.closeDigits()
	c.pushDigit('5') // after the end: neither queued nor a panic
	var got []rune
	for d := range c.Digits() {
		got = append(got, d)
	}
	if string(got) != "1234" {
		t.Errorf("Digits gave %q, want \"1234\"", string(got))
	}
	if string(seen) != "1#23#45" {
		t.Errorf("the filter saw %q, want \"1#23#45\"", string(seen))
	}
}
