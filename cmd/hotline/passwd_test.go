package main

import (
	"bytes"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/hotline-project/hotline/config"
)

func TestPasswd(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		stdin   string
		want    string
		wantErr string
	}{
		{name: "default realm", args: []string{"-id", "maria"}, stdin: "Circle of Life\n",
			want: "  - id: maria\n    languages: [en]\n    ha1_sha256: SHA\n    ha1_md5: MD5\n"},
		{name: "no newline", args: []string{"-id", "maria"}, stdin: "Circle of Life",
			want: "  - id: maria\n    languages: [en]\n    ha1_sha256: SHA\n    ha1_md5: MD5\n"},
		{name: "crlf", args: []string{"-id", "maria"}, stdin: "Circle of Life\r\n",
			want: "  - id: maria\n    languages: [en]\n    ha1_sha256: SHA\n    ha1_md5: MD5\n"},
		{name: "other realm", args: []string{"-id", "maria", "-realm", "example.org"}, stdin: "Circle of Life\n",
			want: "  - id: maria\n    languages: [en]\n    ha1_sha256: SHA_EX\n    ha1_md5: MD5_EX\n"},
		{name: "languages", args: []string{"-id", "maria", "-languages", "es,en"}, stdin: "Circle of Life\n",
			want: "  - id: maria\n    languages: [es, en]\n    ha1_sha256: SHA\n    ha1_md5: MD5\n"},
		{name: "no id", stdin: "pw\n", wantErr: `passwd: -id "": want lowercase letters, digits, _, . and -`},
		{name: "bad id", args: []string{"-id", "Maria"}, stdin: "pw\n", wantErr: `passwd: -id "Maria"`},
		{name: "bad realm", args: []string{"-id", "maria", "-realm", `a"b`}, stdin: "pw\n", wantErr: `passwd: -realm`},
		{name: "empty password", args: []string{"-id", "maria"}, stdin: "\n", wantErr: "passwd: empty password"},
		{name: "extra argument", args: []string{"-id", "maria", "x"}, stdin: "pw\n", wantErr: `passwd: unexpected argument "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := passwdCmd(tt.args, strings.NewReader(tt.stdin), &out, &errOut)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := strings.NewReplacer("SHA_EX", shaEx, "MD5_EX", md5Ex, "SHA", shaHotline, "MD5", md5Hotline).Replace(tt.want)
			if out.String() != want {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
			}
			if strings.Contains(out.String()+errOut.String(), "Circle") {
				t.Errorf("the password was printed")
			}
		})
	}
}

// Hashes of "maria:<realm>:Circle of Life", from sha256sum and md5sum.
const (
	shaHotline = "37b7dc5fedc7ed5f36da3573aef88bf88fba409592f6922896b1b6959426ec5f"
	md5Hotline = "46870821510895da843da9dc51228447"
	shaEx      = "58e605876ca375a055a1e12150b96ce977a144451b82a2888cf72293cb22580c"
	md5Ex      = "5ef2521cdcf53fb5c71ac2013880ba6c"
)

// The printed lines paste into a configuration that loads.
func TestPasswdOutputLoads(t *testing.T) {
	var out bytes.Buffer
	if err := passwdCmd([]string{"-id", "maria"}, strings.NewReader("pw\n"), &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	cfg := "lines: [{number: \"18883737888\"}]\nadvocates:\n" + out.String()
	c, err := config.Parse("pasted.yaml", []byte(cfg))
	if err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
	if len(c.Advocates) != 1 || c.Advocates[0].ID != "maria" {
		b, _ := yaml.Marshal(c.Advocates)
		t.Errorf("advocates = %s", b)
	}
}
