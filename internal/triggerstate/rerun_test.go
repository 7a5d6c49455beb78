package triggerstate

import (
	"strings"
	"testing"
)

func TestParseRerun(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RerunRequest
		err  bool
	}{
		{"1 app-main-abc", RerunRequest{ID: "1", Run: "app-main-abc"}, false},
		{"2026-12-06.1 app latest", RerunRequest{ID: "2026-12-06.1", Run: "app", Latest: true}, false},
		{"app", RerunRequest{}, true},
		{"1 app newest", RerunRequest{}, true},
		{"1 App_Name", RerunRequest{}, true},
		{strings.Repeat("x", 33) + " app", RerunRequest{}, true},
		{"1/2 app", RerunRequest{}, true},
	} {
		got, err := ParseRerun(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseRerun(%q) = %+v, %v", tc.in, got, err)
		}
		if err == nil && got.String() != strings.Join(strings.Fields(tc.in), " ") {
			t.Errorf("%+v.String() = %q", got, got.String())
		}
	}
}
