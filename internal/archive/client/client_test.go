package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/internal/archive"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct {
		base     string
		q        url.Values
		segments []string
		want     string // "" when refused
	}{
		{"https://archive.example", nil, []string{"team-a", "runs"}, "https://archive.example/v1/namespaces/team-a/runs"},
		{"https://archive.example/flowci/", url.Values{"uid": {"u-1"}}, []string{"a", "runs", "b"},
			"https://archive.example/flowci/v1/namespaces/a/runs/b?uid=u-1"},
		{"https://archive.example", nil, []string{"a", "runs", "b/../../x"}, "https://archive.example/v1/namespaces/a/runs/b%2F..%2F..%2Fx"},
		{"https://archive.example", nil, []string{"a", "runs", "b?c#d"}, "https://archive.example/v1/namespaces/a/runs/b%3Fc%23d"},
		{"http://127.0.0.1:8080", nil, []string{"a"}, "http://127.0.0.1:8080/v1/namespaces/a"},
		{"http://[::1]:8080", nil, []string{"a"}, "http://[::1]:8080/v1/namespaces/a"},
		{"http://localhost", nil, []string{"a"}, "http://localhost/v1/namespaces/a"},
		{"https://archive.example", nil, []string{"a", "runs", ".."}, ""},
		{"https://archive.example", nil, []string{"", "runs"}, ""},
		{"http://archive.example", nil, []string{"a"}, ""},
		{"http://127.0.0.1.archive.example", nil, []string{"a"}, ""},
		{"ftp://archive.example", nil, []string{"a"}, ""},
		{"archive.example", nil, []string{"a"}, ""},
	} {
		u, err := New(tc.base, "token", nil).url(tc.q, tc.segments...)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s %q: %s, want a refusal", tc.base, tc.segments, u)
		case tc.want != "" && (err != nil || u.String() != tc.want):
			t.Errorf("%s %q: %v %v, want %s", tc.base, tc.segments, u, err, tc.want)
		}
	}
}

func TestErrorOf(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   Error
	}{
		{403, `{"error":"you may not get pods/log in namespace a"}` + "\n", Error{403, "you may not get pods/log in namespace a"}},
		{502, "<html>\r\n<h1>Bad Gateway</h1>\n</html>", Error{502, "<html>  <h1>Bad Gateway</h1> </html>"}},
		{503, "", Error{503, "503 Service Unavailable"}},
		{500, strings.Repeat("e", 5000), Error{500, strings.Repeat("e", maxMessage) + "..."}},
	} {
		resp := &http.Response{StatusCode: tc.status, Status: "503 Service Unavailable", Body: io.NopCloser(strings.NewReader(tc.body))}
		if d := cmp.Diff(tc.want, *errorOf(resp)); d != "" {
			t.Errorf("errorOf(%d, %.40q) (-want +got):\n%s", tc.status, tc.body, d)
		}
	}
	if err := error(&Error{Status: 404}); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("a 404 is not archive.ErrNotFound")
	}
	if err := error(&Error{Status: 403}); errors.Is(err, archive.ErrNotFound) {
		t.Errorf("a 403 is archive.ErrNotFound")
	}
}

func TestLogInfo(t *testing.T) {
	for _, tc := range []struct {
		header map[string]string
		want   LogInfo
		bad    bool
	}{
		{map[string]string{"X-Flowci-Log-Bytes": "12", "X-Flowci-Log-Done": "true", "X-Flowci-Log-Cut": "true",
			"X-Flowci-Log-Missing": "the end"}, LogInfo{Bytes: 12, Done: true, Cut: true, Missing: "the end"}, false},
		{map[string]string{"X-Flowci-Log-Bytes": "0"}, LogInfo{}, false},
		{map[string]string{}, LogInfo{}, true},
		{map[string]string{"X-Flowci-Log-Bytes": "-1"}, LogInfo{}, true},
		{map[string]string{"X-Flowci-Log-Bytes": "ten"}, LogInfo{}, true},
	} {
		h := http.Header{}
		for k, v := range tc.header {
			h.Set(k, v)
		}
		got, err := logInfo(h)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("logInfo(%v) = %+v, %v; want %+v, error %v", tc.header, got, err, tc.want, tc.bad)
		}
	}
}

// TestHostileAnswers: a server (or a proxy in front of one) that sends an endless
// answer, or a log shorter than it announced, gets an error, not a hang or a short
// log taken as whole.
func TestHostileAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/logs/") {
			w.Header().Set("X-Flowci-Log-Bytes", "100")
			_, _ = io.WriteString(w, "only part of it")
			return
		}
		_, _ = io.WriteString(w, `{"items":[`)
		chunk := strings.Repeat(`{"uid":"u"},`, 1<<12)
		for n := 0; n <= MaxJSON && r.Context().Err() == nil; n += len(chunk) {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "token", srv.Client())
	if _, _, err := c.List(context.Background(), "a", Filter{}); err == nil || !strings.Contains(err.Error(), "larger than 24 MiB") {
		t.Errorf("an endless answer: %v", err)
	}
	var got strings.Builder
	if _, err := c.Log(context.Background(), "a", "b", "step-0", &got); !errors.Is(err, errLogLength) {
		t.Errorf("a short log: %v (%q)", err, got.String())
	}
}
