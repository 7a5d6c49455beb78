package api

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/internal/archive"
)

func TestListQuery(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name, raw string
		want      archive.Query
		bad       string // a part of the 400's message
	}{
		{name: "no filter", raw: "", want: archive.Query{Namespace: "ns"}},
		{name: "every filter",
			raw: "repo=https%3A%2F%2Fgit.example%2Fapp.git&branch=feature%2Fx&commit=ABCDEF12&phase=Failed" +
				"&since=2026-01-02T03:04:05Z&until=2026-01-03T00:00:00%2B01:00&limit=500&after=bi4xMjM0LnUtMQ",
			want: archive.Query{Namespace: "ns", RepoURL: "https://git.example/app.git", Branch: "feature/x",
				Commit: "abcdef12", Phase: "Failed", Since: since, Until: time.Date(2026, 1, 2, 23, 0, 0, 0, time.UTC),
				Limit: 500, After: "bi4xMjM0LnUtMQ"}},
		{name: "limit 1", raw: "limit=1", want: archive.Query{Namespace: "ns", Limit: 1}},
		{name: "an unknown parameter", raw: "brnach=main", bad: `unknown parameter "brnach"`},
		{name: "a parameter twice", raw: "phase=Failed&phase=Succeeded", bad: `"phase" is given more than once`},
		{name: "a broken query", raw: "repo=%zz", bad: "the query is not valid"},
		{name: "limit 0", raw: "limit=0", bad: "limit"},
		{name: "limit past the maximum", raw: "limit=501", bad: "from 1 to 500"},
		{name: "limit not a number", raw: "limit=ten", bad: "limit"},
		{name: "an unknown phase", raw: "phase=failed", bad: "is not one of Queued"},
		{name: "a short commit", raw: "commit=abc", bad: "commit"},
		{name: "a commit not hex", raw: "commit=main1234", bad: "hex"},
		{name: "a commit too long", raw: "commit=" + strings.Repeat("a", 65), bad: "hex"},
		{name: "a time not RFC 3339", raw: "since=2026-01-02", bad: "RFC 3339"},
		{name: "a time the store cannot keep", raw: "until=3000-01-01T00:00:00Z", bad: "outside the years"},
		{name: "since not before until", raw: "since=2026-01-02T03:04:05Z&until=2026-01-02T03:04:05Z", bad: "before until"},
		{name: "a control character", raw: "branch=main%0A", bad: "not printable"},
		{name: "a repo too long", raw: "repo=" + strings.Repeat("a", maxRepo+1), bad: "more than 2048"},
		{name: "a cursor no list returned", raw: "after=a.b", bad: "after"},
		{name: "a cursor not base64", raw: "after=a", bad: "after"},
		{name: "a cursor of an oldest-first list", raw: "after=by4xMjM0LnUtMQ", bad: "after"}, // o.1234.u-1
		{name: "a cursor without a time", raw: "after=bi54LnUtMQ", bad: "after"},              // n.x.u-1
		{name: "a cursor with a bad UID", raw: "after=bi4xLlUtMQ", bad: "after"},              // n.1.U-1
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := listQuery("ns", tc.raw)
			if tc.bad != "" {
				var b badRequest
				if !errors.As(err, &b) || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("listQuery(%q) = %v, want a bad request with %q", tc.raw, err, tc.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("listQuery(%q) (-want +got):\n%s", tc.raw, d)
			}
		})
	}
}

func TestRunRef(t *testing.T) {
	for _, tc := range []struct {
		ns, name, raw, uid string
		bad                string
	}{
		{ns: "team-a", name: "build-1", raw: ""},
		{ns: "team-a", name: "build.v1", raw: "uid=0b8d7c1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e", uid: "0b8d7c1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e"},
		{ns: "Team-A", name: "b", bad: "namespace"},
		{ns: "team.a", name: "b", bad: "namespace"},
		{ns: strings.Repeat("a", 64), name: "b", bad: "namespace"},
		{ns: "a", name: "Build", bad: "run name"},
		{ns: "a", name: strings.Repeat("b", 254), bad: "run name"},
		{ns: "a", name: "b", raw: "uid=", bad: "uid"},
		{ns: "a", name: "b", raw: "uid=0B8D", bad: "uid"},
		{ns: "a", name: "b", raw: "uid=" + strings.Repeat("a", 129), bad: "uid"},
		{ns: "a", name: "b", raw: "limit=1", bad: "unknown parameter"},
	} {
		uid, err := runRef(tc.ns, tc.name, tc.raw)
		switch {
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("runRef(%q, %.20q, %q) = %v, want an error with %q", tc.ns, tc.name, tc.raw, err, tc.bad)
		case tc.bad == "" && (err != nil || uid != tc.uid):
			t.Errorf("runRef(%q, %q, %q) = %q, %v, want %q", tc.ns, tc.name, tc.raw, uid, err, tc.uid)
		}
	}
}

func TestLogRef(t *testing.T) {
	for _, tc := range []struct {
		raw, stream string
		uid         string
		offset      int64
		bad         string
	}{
		{raw: "", stream: "step-0-abcde"},
		{raw: "uid=u-1&offset=0", stream: "clone-x", uid: "u-1"},
		{raw: "offset=9223372036854775807", stream: "clone", offset: 1<<63 - 1},
		{raw: "offset=9223372036854775808", stream: "clone", bad: "offset"},
		{raw: "offset=", stream: "clone", bad: "offset"},
		{raw: "offset=-1", stream: "clone", bad: "offset"},
		{raw: "offset=%2B1", stream: "clone", bad: "offset"},
		{raw: "offset=1e3", stream: "clone", bad: "offset"},
		{raw: "offset=1&offset=2", stream: "clone", bad: "more than once"},
		{raw: "uid=U", stream: "clone", bad: "uid"},
		{raw: "", stream: "Step_0", bad: "stream"},
		{raw: "after=x", stream: "clone", bad: "unknown parameter"},
	} {
		uid, offset, err := logRef("a", "b", tc.stream, tc.raw)
		switch {
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("logRef(%q, %q) = %v, want an error with %q", tc.stream, tc.raw, err, tc.bad)
		case tc.bad == "" && (err != nil || uid != tc.uid || offset != tc.offset):
			t.Errorf("logRef(%q, %q) = %q, %d, %v; want %q, %d", tc.stream, tc.raw, uid, offset, err, tc.uid, tc.offset)
		}
	}
}

func TestCheckStream(t *testing.T) {
	for stream, ok := range map[string]bool{
		"clone": true, "step-0": true, "step-12": true, "": false, "Step-0": false, "step_0": false,
		"-step": false, strings.Repeat("s", 64): false,
	} {
		if err := checkStream(stream); (err == nil) != ok {
			t.Errorf("checkStream(%q) = %v, want ok %v", stream, err, ok)
		}
	}
}

func TestHeaderText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"lines 3 to 9: the kubelet rotated the log", 256, "lines 3 to 9: the kubelet rotated the log"},
		{" a\r\nX-Injected: 1\x00 ", 256, "a??X-Injected: 1?"},
		{"résumé ✓", 256, "r?sum? ?"},
		{"abcdef", 4, "abcd"},
		{"", 256, ""},
	} {
		if got := headerText(tc.in, tc.max); got != tc.want {
			t.Errorf("headerText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
