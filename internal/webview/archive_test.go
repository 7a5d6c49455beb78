package webview

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAttemptsOf(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	logs := []ArchivedLog{
		{Stream: "step-2-aaaaa", Last: t0.Add(time.Minute)},
		{Stream: "clone-ccccc", Last: t0},
		{Stream: "step-2-zzzzz", Last: t0},
		{Stream: "step-20-bbbbb", Last: t0},
		{Stream: "notes"},
	}
	for _, tc := range []struct {
		step int
		want []string
	}{
		{cloneStep, []string{"clone-ccccc"}},
		{2, []string{"step-2-zzzzz", "step-2-aaaaa"}},
		{20, []string{"step-20-bbbbb"}},
		{3, nil},
	} {
		var got []string
		for _, l := range attemptsOf(logs, tc.step) {
			got = append(got, l.Stream)
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("attemptsOf(step %d) (-want +got):\n%s", tc.step, d)
		}
	}
}

func TestArchivedNote(t *testing.T) {
	for _, tc := range []struct {
		logs []ArchivedLog
		want logNote
	}{
		{[]ArchivedLog{{Stream: "step-0-a"}}, logNote{From: "archive"}},
		{[]ArchivedLog{{Stream: "step-0-a", Missing: "everything after byte 9"}, {Stream: "step-0-b"}, {Stream: "step-0-c", Missing: "lines 3 to 9"}},
			logNote{From: "archive", Missing: "everything after byte 9; lines 3 to 9"}},
	} {
		if got := archivedNote(tc.logs); got != tc.want {
			t.Errorf("archivedNote(%v) = %+v, want %+v", tc.logs, got, tc.want)
		}
	}
}

func TestCheckUID(t *testing.T) {
	for uid, ok := range map[string]bool{
		"": true, "0b8d7c1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e": true, "uid-gone": true,
		"UID": false, "a b": false, "a&b=c": false, string(make([]byte, 129)): false,
	} {
		if err := checkUID(uid); (err == nil) != ok {
			t.Errorf("checkUID(%.20q) = %v, want ok %v", uid, err, ok)
		}
	}
}
