package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/flow-ci/flow-ci/internal/archive/api"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"2026-03-01T12:00:00Z", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), false},
		{"2026-03-01T12:00:00+01:00", time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC), false},
		{"90m", now.Add(-90 * time.Minute), false},
		{"36h", now.Add(-36 * time.Hour), false},
		{"7d", now.Add(-7 * 24 * time.Hour), false},
		{"0d", time.Time{}, true},
		{"-1h", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"2026-03-01", time.Time{}, true},
		{"d", time.Time{}, true},
	} {
		got, err := parseWhen("--since", tc.in, now)
		if (err != nil) != tc.bad || !got.Equal(tc.want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
		if err != nil && !strings.Contains(err.Error(), "--since") {
			t.Errorf("parseWhen(%q): the error does not name the flag: %v", tc.in, err)
		}
	}
}

func TestBearerCredentials(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  rest.Config
		bad  string // a part of the error; "" when accepted
	}{
		{"a token", rest.Config{BearerToken: "t"}, ""},
		{"a token file", rest.Config{BearerTokenFile: "/var/run/token"}, ""},
		{"an exec plugin", rest.Config{ExecProvider: &clientcmdapi.ExecConfig{Command: "login"}}, ""},
		{"an auth provider", rest.Config{AuthProvider: &clientcmdapi.AuthProviderConfig{Name: "oidc"}}, ""},
		{"a token beside a client certificate", rest.Config{BearerToken: "t", TLSClientConfig: rest.TLSClientConfig{CertData: []byte("c")}}, ""},
		{"a client certificate", rest.Config{TLSClientConfig: rest.TLSClientConfig{CertData: []byte("c"), KeyData: []byte("k")}}, "client certificate"},
		{"a client certificate file", rest.Config{TLSClientConfig: rest.TLSClientConfig{CertFile: "/c.pem"}}, "client certificate"},
		{"basic auth", rest.Config{Username: "u", Password: "p"}, "no credentials the run archive can check"},
		{"nothing", rest.Config{}, "no credentials the run archive can check"},
		{"impersonation", rest.Config{BearerToken: "t", Impersonate: rest.ImpersonationConfig{UserName: "other"}}, "impersonation"},
		{"a group impersonated", rest.Config{BearerToken: "t", Impersonate: rest.ImpersonationConfig{Groups: []string{"g"}}}, "impersonation"},
	} {
		err := bearerCredentials(&tc.cfg)
		if tc.bad == "" && err != nil || tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.bad)
		}
	}
}

func TestServiceURL(t *testing.T) {
	for _, tc := range []struct {
		host, port, url, serverName string
	}{
		{"10.96.0.12", "443", "https://10.96.0.12:443", "flow-ci-archive.flow-ci-system.svc"},
		{"fd00::12", "8443", "https://[fd00::12]:8443", "flow-ci-archive.flow-ci-system.svc"},
		{"10.96.0.12", "", "", ""},
		{"", "443", "", ""},
	} {
		env := map[string]string{archiveServiceEnv + "HOST": tc.host, archiveServiceEnv + "PORT": tc.port}
		url, name := serviceURL(func(k string) string { return env[k] }, "flow-ci-system")
		if url != tc.url || name != tc.serverName {
			t.Errorf("serviceURL(%q, %q) = %q, %q; want %q, %q", tc.host, tc.port, url, name, tc.url, tc.serverName)
		}
	}
}

func TestSkipLines(t *testing.T) {
	for _, tc := range []struct {
		writes []string
		skip   int
		want   string
	}{
		{[]string{"a\nb\nc\n"}, 0, "a\nb\nc\n"},
		{[]string{"a\nb\nc\n"}, 2, "c\n"},
		{[]string{"a", "\nb", "\nc"}, 2, "c"},
		{[]string{"a\nb\n"}, 5, ""},
		{[]string{"a\n", "", "b\n"}, 1, "b\n"},
	} {
		var out bytes.Buffer
		w := &skipLines{w: &out, left: tc.skip}
		for _, p := range tc.writes {
			if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
				t.Errorf("Write(%q) = %d, %v", p, n, err)
			}
		}
		if out.String() != tc.want {
			t.Errorf("skipping %d of %q: %q, want %q", tc.skip, tc.writes, out.String(), tc.want)
		}
	}
}

func TestAttemptsByStep(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	streams := []api.Stream{
		{Name: "step-1-aaaaa", Last: t0.Add(2 * time.Second)},
		{Name: "step-0-bbbbb", Last: t0.Add(time.Second)},
		{Name: "clone-ccccc", Last: t0},
		{Name: "step-1-zzzzz", Last: t0.Add(time.Second)},
		{Name: "step-1-yyyyy"}, // no lines: its pod ran first
		{Name: "notes"},        // neither a clone's nor a step's
	}
	got := map[int][]string{}
	for i, list := range attemptsByStep(streams) {
		for _, s := range list {
			got[i] = append(got[i], s.Name)
		}
	}
	want := map[int][]string{cloneStep: {"clone-ccccc"}, 0: {"step-0-bbbbb"}, 1: {"step-1-yyyyy", "step-1-zzzzz", "step-1-aaaaa"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("attemptsByStep (-want +got):\n%s", d)
	}
}
