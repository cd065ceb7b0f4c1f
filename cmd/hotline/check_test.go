package main

import (
	"strings"
	"testing"
)

// `hotline check` warns about an advocate whose challenge differs from the one names with
// no account get (issue 13: offering each advocate only what they have an HA1 for must not
// let a scanner enumerate accounts unnoticed).
func TestCheckWarnsDistinguishableAccount(t *testing.T) {
	t.Parallel()
	const both = "    ha1_sha256: 5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e\n    ha1_md5: 0c2f9a0c2f9a0c2f9a0c2f9a0c2f9a0c\n"
	cfg := `sip:
  digest_algorithms: [SHA-256, MD5]
lines: [{number: "18883737888"}]
advocates:
  - id: ana
    languages: [en]
` + both + `  - id: bo
    languages: [en]
` + both + `  - id: cy
    languages: [en]
    ha1_md5: 0c2f9a0c2f9a0c2f9a0c2f9a0c2f9a0c
`
	p := writeFile(t, t.TempDir(), "hotline.yaml", cfg)
	code, out, errOut := runCmd(t, "check", "-config", p)
	want := p + ": warning: advocates[2] (cy) is challenged with [MD5] where names with no account, like most advocates, get [SHA-256 MD5]"
	if code != 0 || !strings.Contains(out, want) || strings.Contains(out, "(ana)") || strings.Contains(out, "(bo)") {
		t.Fatalf("check: exit %d\n%s%s\nwant a warning about cy only:\n%s", code, out, errOut, want)
	}
	// With the default [MD5], every account with ha1_md5 looks alike.
	p = writeFile(t, t.TempDir(), "hotline.yaml", strings.Replace(cfg, "[SHA-256, MD5]", "[MD5]", 1))
	if code, out, errOut := runCmd(t, "check", "-config", p); code != 0 || strings.Contains(out, "warning") {
		t.Fatalf("check with [MD5]: exit %d\n%s%s", code, out, errOut)
	}
}
