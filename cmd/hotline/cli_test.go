package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotline-project/hotline/config"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, nil)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigCommand: `hotline config` prints the embedded default, which `check` accepts.
func TestConfigCommand(t *testing.T) {
	t.Parallel()
	code, out, _ := runCmd(t, "config")
	if code != 0 || !bytes.Equal([]byte(out), config.Default()) {
		t.Fatalf("config: exit %d, output differs from the embedded default", code)
	}
	p := writeFile(t, t.TempDir(), "hotline.yaml", out)
	code, out, errOut := runCmd(t, "check", "-config", p)
	if code != 0 || !strings.HasSuffix(out, ": ok\n") {
		t.Fatalf("check of the default: exit %d\n%s%s", code, out, errOut)
	}
}

// TestCheckReportsFileLineField: every error names file, line and field, and exits non-zero.
func TestCheckReportsFileLineField(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "bad.yaml", `sip:
  listen: 127.0.0.1:5060
  lisen: oops
media:
  port_min: 20000
  port_max: 10000
lines:
  - number: "18883737888"
`)
	code, _, errOut := runCmd(t, "check", "-config", p)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	want := p + ":3: sip.lisen: unknown field\n"
	if errOut != want {
		t.Fatalf("stderr:\n%s\nwant:\n%s", errOut, want)
	}
	p2 := writeFile(t, dir, "bad2.yaml", "media:\n  port_min: 20000\n  port_max: 10000\nlines:\n  - number: \"18883737888\"\n")
	code, _, errOut = runCmd(t, "check", "-config", p2)
	if code != 1 || !strings.Contains(errOut, p2+":3: media.port_max: must be greater than port_min") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "check"); code == 0 || !strings.Contains(errOut, "-config FILE is required") {
		t.Fatalf("check without -config: exit %d %s", code, errOut)
	}
}

// TestServeRefusesBadConfig: the server does not start on a bad file.
func TestServeRefusesBadConfig(t *testing.T) {
	t.Parallel()
	p := writeFile(t, t.TempDir(), "bad.yaml", "lines: []\n")
	code, _, errOut := runCmd(t, "serve", "-config", p, "-sip", "127.0.0.1:0", "-http", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, p+":1: lines:") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}

// TestServeRefusesBadPrompt: an operator recording we cannot play stops start-up, by name.
func TestServeRefusesBadPrompt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := writeFile(t, dir, "prompts/es/greeting.wav", "RIFF\x00\x00\x00\x00WAVEnot really")
	cfg := writeFile(t, dir, "hotline.yaml", "prompts:\n  dir: "+filepath.Join(dir, "prompts")+"\nlines:\n  - number: \"18883737888\"\n")
	code, _, errOut := runCmd(t, "serve", "-config", cfg, "-sip", "127.0.0.1:0", "-http", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, bad) {
		t.Fatalf("exit %d, stderr does not name %s:\n%s", code, bad, errOut)
	}
	code, _, errOut = runCmd(t, "check", "-config", cfg)
	if code != 1 || !strings.Contains(errOut, bad) {
		t.Fatalf("check: exit %d, stderr does not name %s:\n%s", code, bad, errOut)
	}
}

// TestMissingLanguagePrompts: a language in the menu with no recordings is refused.
func TestMissingLanguagePrompts(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, t.TempDir(), "hotline.yaml", `ivr:
  languages:
    - language: en
    - language: es
    - language: fr
lines:
  - number: "18883737888"
`)
	code, _, errOut := runCmd(t, "check", "-config", cfg)
	if code != 1 || !strings.Contains(errOut, "fr/greeting") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	if code, _, errOut := runCmd(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("exit %d %s", code, errOut)
	}
}
