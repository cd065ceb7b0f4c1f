package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/registrar"
)

func TestOnlyLapsed(t *testing.T) {
	now := time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC)
	old := registrar.Binding{AOR: "ana", Contact: "sip:ana@192.0.2.1", CallID: "x", CSeq: 2, Expires: now.Add(-time.Second)}
	live := registrar.Binding{AOR: "ana", Contact: "sip:ana@192.0.2.2", CallID: "y", CSeq: 3, Expires: now.Add(time.Minute)}
	// The same binding read back from the log: no monotonic clock, another location.
	liveLog := live
	liveLog.Expires = live.Expires.In(time.FixedZone("x", 3600))
	fresh := live
	fresh.CSeq, fresh.Expires = 4, now.Add(time.Hour)
	for _, tc := range []struct {
		name       string
		prev, next []registrar.Binding
		want       bool
	}{
		{"one lapsed, gone", []registrar.Binding{old}, nil, true},
		{"a lapsed one gone, a live one kept", []registrar.Binding{old, liveLog}, []registrar.Binding{live}, true},
		{"a live one removed (unregistered)", []registrar.Binding{liveLog}, nil, false},
		{"a refresh", []registrar.Binding{liveLog}, []registrar.Binding{fresh}, false},
		{"a new one", nil, []registrar.Binding{live}, false},
		{"a lapsed one gone, another added", []registrar.Binding{old}, []registrar.Binding{live}, false},
	} {
		if got := onlyLapsed(tc.prev, tc.next, now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestClusterSecret: the secret comes from $HOTLINE_CLUSTER_SECRET before the file, and
// either is refused when shorter than 16 characters.
func TestClusterSecret(t *testing.T) {
	dir := t.TempDir()
	long := writeFile(t, dir, "long", "0123456789abcdef-file\n")
	short := writeFile(t, dir, "short", "short\n")
	for _, tc := range []struct {
		env, file, want, err string
	}{
		{file: long, want: "0123456789abcdef-file"},
		{env: "0123456789abcdef-env", file: short, want: "0123456789abcdef-env"},
		{file: short, err: "state.cluster.secret_file " + short + ": the secret must be at least 16 characters"},
		{env: "short", file: long, err: "$HOTLINE_CLUSTER_SECRET: the secret must be at least 16 characters"},
		{err: "no secret"},
	} {
		t.Setenv("HOTLINE_CLUSTER_SECRET", tc.env)
		got, err := clusterSecret(config.Cluster{SecretFile: tc.file})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("env %q file %q: %q, %v; want error %q", tc.env, tc.file, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("env %q file %q: %q, %v; want %q", tc.env, tc.file, got, err, tc.want)
		}
	}
}

// TestCheckClusterSecret: `hotline check` refuses a cluster node's configuration whose
// secret the server would refuse at start.
func TestCheckClusterSecret(t *testing.T) {
	t.Setenv("HOTLINE_CLUSTER_SECRET", "")
	dir := t.TempDir()
	cfg := func(secret string) string {
		return writeFile(t, dir, "hotline.yaml", "lines: [{number: \"18883737888\"}]\nstate:\n  dir: "+filepath.Join(dir, "state")+
			"\n  cluster:\n    node_id: n1\n    bind: 127.0.0.1:0\n    secret_file: "+writeFile(t, dir, "secret", secret)+"\n")
	}
	if code, out, errOut := runCmd(t, "check", "-config", cfg("short\n")); code == 0 || !strings.Contains(out+errOut, "at least 16 characters") {
		t.Errorf("check with a short secret: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCmd(t, "check", "-config", cfg("0123456789abcdef\n")); code != 0 {
		t.Errorf("check with a good secret: exit %d\n%s%s", code, out, errOut)
	}
}
