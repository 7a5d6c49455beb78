package schedule

import (
	"strings"
	"testing"
	"time"
)

var berlin = mustZone("Europe/Berlin")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func at(loc *time.Location, month time.Month, day, hour, minute int) time.Time {
	return time.Date(2026, month, day, hour, minute, 0, 0, loc)
}

func mustParse(t *testing.T, expr, tz string) Schedule {
	t.Helper()
	s, err := Parse(expr, tz)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// slots lists the slots in (from, to], in UTC.
func slots(s Schedule, from, to time.Time) []string {
	var out []string
	for t := s.Next(from); !t.IsZero() && !t.After(to); t = s.Next(t) {
		out = append(out, t.UTC().Format("01-02 15:04Z"))
	}
	return out
}

// TestDST: in Berlin, 2026-03-29 02:00 CET jumps to 03:00 CEST and 2026-10-25 03:00
// CEST falls back to 02:00 CET.
func TestDST(t *testing.T) {
	cases := []struct {
		name, expr string
		from, to   time.Time
		want       []string
	}{
		{"a daily slot in the spring gap runs an hour later, not never", "30 2 * * *",
			at(berlin, 3, 28, 12, 0), at(berlin, 3, 30, 12, 0), []string{"03-29 01:30Z", "03-30 00:30Z"}},
		{"a daily slot in the repeated hour runs once", "30 2 * * *",
			at(berlin, 10, 24, 12, 0), at(berlin, 10, 26, 12, 0), []string{"10-25 00:30Z", "10-26 01:30Z"}},
		{"a daily slot outside the change keeps its wall time", "0 3 * * *",
			at(berlin, 3, 28, 12, 0), at(berlin, 3, 30, 12, 0), []string{"03-29 01:00Z", "03-30 01:00Z"}},
		{"hourly across the gap: the missing 02:00 is the 03:00, once", "0 * * * *",
			at(berlin, 3, 29, 0, 30), at(berlin, 3, 29, 4, 30), []string{"03-29 00:00Z", "03-29 01:00Z", "03-29 02:00Z"}},
		{"hourly across the repeated hour: each wall hour once", "0 * * * *",
			at(berlin, 10, 25, 0, 30), at(berlin, 10, 25, 4, 30), []string{"10-24 23:00Z", "10-25 00:00Z", "10-25 02:00Z", "10-25 03:00Z"}},
		{"UTC has no DST", "30 2 * * *",
			at(time.UTC, 3, 28, 12, 0), at(time.UTC, 3, 30, 12, 0), []string{"03-29 02:30Z", "03-30 02:30Z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tz := tc.from.Location().String()
			if tz == "UTC" {
				tz = ""
			}
			got := slots(mustParse(t, tc.expr, tz), tc.from, tc.to)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDue(t *testing.T) {
	nightly := mustParse(t, "0 3 * * *", "Europe/Berlin")
	every5 := mustParse(t, "*/5 * * * *", "")
	cases := []struct {
		name        string
		s           Schedule
		last, now   time.Time
		deadline    time.Duration
		want        time.Time
		wantSkipped bool
		wantNext    time.Time
	}{
		{"nothing due before the first slot", nightly, at(berlin, 5, 1, 12, 0), at(berlin, 5, 2, 2, 59), time.Hour,
			time.Time{}, false, at(berlin, 5, 2, 3, 0)},
		{"the slot is due at its time", nightly, at(berlin, 5, 1, 12, 0), at(berlin, 5, 2, 3, 0), time.Hour,
			at(berlin, 5, 2, 3, 0), false, at(berlin, 5, 3, 3, 0)},
		{"no double fire: the recorded slot is not due again", nightly, at(berlin, 5, 2, 3, 0), at(berlin, 5, 2, 3, 0), time.Hour,
			time.Time{}, false, at(berlin, 5, 3, 3, 0)},
		{"no double fire a second later (Argo #2694)", nightly, at(berlin, 5, 2, 3, 0), at(berlin, 5, 2, 3, 0).Add(time.Second), time.Hour,
			time.Time{}, false, at(berlin, 5, 3, 3, 0)},
		{"after downtime only the newest missed slot runs", nightly, at(berlin, 5, 1, 12, 0), at(berlin, 5, 4, 3, 20), time.Hour,
			at(berlin, 5, 4, 3, 0), true, at(berlin, 5, 5, 3, 0)},
		{"past the starting deadline nothing runs", nightly, at(berlin, 5, 1, 12, 0), at(berlin, 5, 4, 4, 1), time.Hour,
			time.Time{}, true, at(berlin, 5, 5, 3, 0)},
		{"exactly at the deadline it still runs", nightly, at(berlin, 5, 1, 12, 0), at(berlin, 5, 4, 4, 0), time.Hour,
			at(berlin, 5, 4, 3, 0), true, at(berlin, 5, 5, 3, 0)},
		{"without a deadline the newest slot of the last 7 days runs", every5, at(time.UTC, 1, 1, 0, 0), at(time.UTC, 6, 1, 0, 2), 0,
			at(time.UTC, 6, 1, 0, 0), true, at(time.UTC, 6, 1, 0, 5)},
		{"the repeated autumn hour does not fire the nightly 02:30 twice", mustParse(t, "30 2 * * *", "Europe/Berlin"),
			time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), time.Date(2026, 10, 25, 1, 45, 0, 0, time.UTC), time.Hour,
			time.Time{}, false, time.Date(2026, 10, 26, 1, 30, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Due(tc.s, tc.last, tc.now, tc.deadline)
			if !got.Time.Equal(tc.want) || got.Skipped != tc.wantSkipped || !got.Next.Equal(tc.wantNext) {
				t.Errorf("got slot %v skipped %v next %v; want %v, %v, %v", got.Time, got.Skipped, got.Next, tc.want, tc.wantSkipped, tc.wantNext)
			}
		})
	}
}

// TestDueIsStable: a lost status write (last not advanced) returns the same slot, so the
// run named from it is the same run (Argo #12625: a restart fired a slot again).
func TestDueIsStable(t *testing.T) {
	s := mustParse(t, "*/10 * * * *", "")
	last := at(time.UTC, 5, 1, 0, 0)
	a := Due(s, last, at(time.UTC, 5, 1, 0, 11), 0)
	b := Due(s, last, at(time.UTC, 5, 1, 0, 19), 0)
	if a.Time.IsZero() || !a.Time.Equal(b.Time) {
		t.Fatalf("got %v then %v, want the same 00:10 slot", a.Time, b.Time)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct{ expr, tz, wantErr string }{
		{"0 3 * * *", "Europe/Berlin", ""},
		{"@daily", "", ""},
		{"0 3 * *", "", "expected exactly 5 fields"},
		{"61 * * * *", "", "end of range (61) above maximum (59)"},
		{"CRON_TZ=UTC 0 3 * * *", "", "goes in timeZone"},
		{"0 3 * * *", "Mars/Olympus", "unknown time zone"},
		{"@every 30m", "", ""},
		{"@every 2h30m", "", ""},
		{"@every 1m", "", ""},
		{"@every 1s", "", "at least 1m0s apart"},
		{"@every 59s", "", "at least 1m0s apart"},
		{"@every 90s", "", "whole minutes"},
	} {
		_, err := Parse(tc.expr, tc.tz)
		if (tc.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Parse(%q, %q): got %v, want %q", tc.expr, tc.tz, err, tc.wantErr)
		}
	}
}

func TestNeverFires(t *testing.T) {
	s := mustParse(t, "0 0 30 2 *", "")
	if got := Due(s, at(time.UTC, 1, 1, 0, 0), at(time.UTC, 12, 31, 0, 0), 0); !got.Time.IsZero() || !got.Next.IsZero() {
		t.Errorf("30 February: got %+v", got)
	}
}

// TestOtherZones: a 30-minute shift (Lord Howe) and a southern-hemisphere spring
// (Sydney, 2026-10-04 02:00 → 03:00) follow the same rules.
func TestOtherZones(t *testing.T) {
	sydney, howe := mustZone("Australia/Sydney"), mustZone("Australia/Lord_Howe")
	for _, tc := range []struct {
		name, expr string
		loc        *time.Location
		from, to   time.Time
		want       []string
	}{
		{"Sydney's gap", "30 2 * * *", sydney, at(sydney, 10, 3, 12, 0), at(sydney, 10, 5, 12, 0), []string{"10-03 16:30Z", "10-04 15:30Z"}},
		// 2026-04-05 02:00 +11 falls back to 01:30 +10:30: 01:45 shows twice.
		{"Lord Howe's repeated half hour", "45 1 * * *", howe, at(howe, 4, 4, 12, 0), at(howe, 4, 6, 12, 0), []string{"04-04 14:45Z", "04-05 15:15Z"}},
	} {
		got := slots(mustParse(t, tc.expr, tc.loc.String()), tc.from, tc.to)
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// An @every schedule fires at most once a wall-clock minute: one slot per 30 minutes.
func TestEveryFiresOncePerPeriod(t *testing.T) {
	got := slots(mustParse(t, "@every 30m", ""), at(time.UTC, 1, 1, 0, 0), at(time.UTC, 1, 1, 2, 0))
	if len(got) != 4 {
		t.Fatalf("@every 30m over two hours fired %d times: %v", len(got), got)
	}
}
