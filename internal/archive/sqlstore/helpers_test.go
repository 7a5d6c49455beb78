package sqlstore

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/internal/archive"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []cursor{
		{created: 1741964966535897932, uid: "0f1c2d3e-4b5a-6978-8695-a4b3c2d1e0f9"},
		{oldest: true, created: 0, uid: "a"},
		{created: -1, uid: "run-1"},
		{oldest: true, created: 1<<63 - 1, uid: "x-y-z"},
	} {
		got, err := decodeCursor(c.encode())
		if err != nil {
			t.Errorf("decodeCursor(encode(%+v)): %v", c, err)
			continue
		}
		if diff := cmp.Diff(c, got, cmp.AllowUnexported(cursor{})); diff != "" {
			t.Errorf("cursor round trip (-want +got):\n%s", diff)
		}
	}
}

func TestDecodeCursorRefuses(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		"",
		"not base64!",
		enc("n.123"),
		enc("x.123.run-1"),
		enc("n.12a.run-1"),
		enc("n.99999999999999999999.run-1"),
		enc("n.123."),
		enc("n.123.RUN"),
		enc("n.123.run/1"),
	} {
		if c, err := decodeCursor(s); err == nil {
			t.Errorf("decodeCursor(%q) = %+v, want an error", s, c)
		}
	}
}

func TestCommitRange(t *testing.T) {
	for _, tc := range []struct{ prefix, lo, hi string }{
		{"abcd", "abcd", "abce"},
		{"abc0", "abc0", "abc1"},
		{"abc9", "abc9", "abca"},
		{"abcf", "abcf", "abcg"},
		{"ffff", "ffff", "fffg"},
		{"0123456789abcdef0123456789abcdef01234567", "0123456789abcdef0123456789abcdef01234567",
			"0123456789abcdef0123456789abcdef01234568"},
	} {
		lo, hi := commitRange(tc.prefix)
		if lo != tc.lo || hi != tc.hi {
			t.Errorf("commitRange(%q) = [%q, %q), want [%q, %q)", tc.prefix, lo, hi, tc.lo, tc.hi)
		}
	}
}

func TestNormalCommit(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"abcd", "abcd", true},
		{"ABCD12", "abcd12", true},
		{strings.Repeat("a", 64), strings.Repeat("a", 64), true},
		{"abc", "", false},
		{"", "", false},
		{strings.Repeat("a", 65), "", false},
		{"abcg", "", false},
		{"ab%d", "", false},
		{"ab_d", "", false},
	} {
		got, err := normalCommit(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("normalCommit(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestPageSize(t *testing.T) {
	for _, tc := range []struct {
		limit, want int
		ok          bool
	}{
		{0, 50, true}, {1, 1, true}, {50, 50, true}, {500, 500, true}, {501, 500, true},
		{1 << 40, 500, true}, {-1, 0, false},
	} {
		got, err := pageSize(tc.limit)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("pageSize(%d) = %d, %v; want %d, ok %v", tc.limit, got, err, tc.want, tc.ok)
		}
	}
}

func TestChunkKey(t *testing.T) {
	for _, tc := range []struct {
		i    int
		want string
	}{
		{0, "team-a/run-1/step-0/00000000.gz"},
		{1, "team-a/run-1/step-0/00000001.gz"},
		{12345678, "team-a/run-1/step-0/12345678.gz"},
		{123456789, "team-a/run-1/step-0/123456789.gz"},
	} {
		if got := chunkKey("team-a", "run-1", "step-0", tc.i); got != tc.want {
			t.Errorf("chunkKey(%d) = %q, want %q", tc.i, got, tc.want)
		}
	}
	if got := runPrefix("team-a", "run-1"); got != "team-a/run-1/" {
		t.Errorf("runPrefix = %q", got)
	}
}

func TestCheckStreamKey(t *testing.T) {
	for _, tc := range []struct {
		name          string
		key           archive.StreamKey
		write, read   bool
		wantInErrText string
	}{
		{"complete", archive.StreamKey{Namespace: "team-a", UID: "run-1", Stream: "step-10"}, true, true, ""},
		{"any namespace", archive.StreamKey{UID: "run-1", Stream: "clone"}, false, true, "namespace is empty"},
		{"no uid", archive.StreamKey{Namespace: "team-a", Stream: "clone"}, false, false, "uid is empty"},
		{"no stream", archive.StreamKey{Namespace: "team-a", UID: "run-1"}, false, false, "stream is empty"},
		{"stream case", archive.StreamKey{Namespace: "team-a", UID: "run-1", Stream: "Clone"}, false, false, "outside"},
		{"stream path", archive.StreamKey{Namespace: "team-a", UID: "run-1", Stream: "a/b"}, false, false, "outside"},
		{"stream dots", archive.StreamKey{Namespace: "team-a", UID: "run-1", Stream: ".."}, false, false, "outside"},
		{"uid path", archive.StreamKey{Namespace: "team-a", UID: "../etc", Stream: "clone"}, false, false, "outside"},
		{"namespace case", archive.StreamKey{Namespace: "Team", UID: "run-1", Stream: "clone"}, false, false, "outside"},
		{"namespace long", archive.StreamKey{Namespace: strings.Repeat("a", 64), UID: "run-1", Stream: "clone"},
			false, false, "more than 63"},
		{"stream long", archive.StreamKey{Namespace: "a", UID: "run-1", Stream: strings.Repeat("a", 64)},
			false, false, "more than 63"},
		{"uid long", archive.StreamKey{Namespace: "a", UID: strings.Repeat("a", 129), Stream: "clone"},
			false, false, "more than 128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			werr, rerr := checkStreamKey(tc.key), checkReadKey(tc.key)
			if (werr == nil) != tc.write || (rerr == nil) != tc.read {
				t.Fatalf("checkStreamKey = %v, checkReadKey = %v; want ok %v, %v", werr, rerr, tc.write, tc.read)
			}
			if werr != nil && !strings.Contains(werr.Error(), tc.wantInErrText) {
				t.Errorf("checkStreamKey = %q, want it to say %q", werr, tc.wantInErrText)
			}
		})
	}
}

func TestCheckRecord(t *testing.T) {
	valid := archive.Record{UID: "run-1", Namespace: "team-a", Name: "build", Created: time.Unix(1, 0), Doc: []byte(`{}`)}
	for _, tc := range []struct {
		name      string
		edit      func(*archive.Record)
		wantInErr string // "" when the record is valid
	}{
		{"valid", func(*archive.Record) {}, ""},
		{"no document", func(r *archive.Record) { r.Doc = nil }, ""},
		{"no uid", func(r *archive.Record) { r.UID = "" }, "uid is empty"},
		{"no namespace", func(r *archive.Record) { r.Namespace = "" }, "namespace is empty"},
		{"no name", func(r *archive.Record) { r.Name = "" }, "name is empty"},
		{"name too long", func(r *archive.Record) { r.Name = strings.Repeat("n", 254) }, "more than 253"},
		{"no creation time", func(r *archive.Record) { r.Created = time.Time{} }, "Created is not set"},
		{"created out of range", func(r *archive.Record) { r.Created = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC) }, "1678"},
		{"finished out of range", func(r *archive.Record) { r.Finished = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }, "2262"},
		{"branch not UTF-8", func(r *archive.Record) { r.Branch = "\xff" }, "not valid UTF-8"},
		{"phase with NUL", func(r *archive.Record) { r.Phase = "a\x00" }, "NUL"},
		{"document not JSON", func(r *archive.Record) { r.Doc = []byte(`{"a":`) }, "not valid JSON"},
		{"document not UTF-8", func(r *archive.Record) { r.Doc = []byte("\"\xff\"") }, "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := valid
			tc.edit(&r)
			err := checkRecord(r)
			if (err == nil) != (tc.wantInErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("checkRecord = %v, want an error saying %q", err, tc.wantInErr)
			}
		})
	}
}

func TestListQueryPlaceholders(t *testing.T) {
	since := time.Unix(100, 5)
	after := cursor{created: 7, uid: "run-1"}.encode()
	query, args, err := listQuery(archive.Query{
		Namespace: "team-a", RepoURL: "r", Branch: "b", Phase: "p", Commit: "ABCD", Since: since, After: after,
	}, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"team-a", "r", "b", "p", "abcd", "abce", since.UnixNano(), int64(7), "run-1", 11}
	if diff := cmp.Diff(want, args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	var numbers []string
	for _, m := range regexp.MustCompile(`\$(\d+)`).FindAllStringSubmatch(query, -1) {
		numbers = append(numbers, m[1])
	}
	if diff := cmp.Diff([]string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}, numbers); diff != "" {
		t.Errorf("placeholders of %s (-want +got):\n%s", query, diff)
	}
	if _, _, err := listQuery(archive.Query{Oldest: true, After: after}, 10); err == nil {
		t.Error("a newest-first cursor was taken for an oldest-first list")
	}
}
