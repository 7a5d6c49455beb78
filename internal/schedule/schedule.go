// Package schedule computes the slots of a PipelineTrigger's cron schedules: when a slot
// is due, which one after downtime, and when to look next. It is pure: the caller
// passes the clock.
//
// A schedule is wall-clock time in its time zone, and every wall-clock slot fires
// exactly once. The cron library alone (as in Kubernetes CronJobs) skips a daily job
// whose time falls in a spring-forward gap and runs it twice when the hour repeats in
// autumn; here a slot in a gap fires at that wall time read in the old offset (an hour
// later), and a repeated hour fires once, at its first occurrence.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// maxLookBack bounds how far back Due walks slots without a starting deadline, so a
// trigger that was down for a year with a per-minute schedule costs a bounded scan.
const maxLookBack = 7 * 24 * time.Hour

// Schedule is a parsed cron expression in its time zone.
type Schedule struct {
	spec cron.Schedule
	loc  *time.Location
}

// MinEvery is the shortest @every schedule: slots are wall-clock minutes, as every
// five-field cron expression's are, so no schedule fires more than once a minute.
const MinEvery = time.Minute

// Parse reads a five-field cron expression (or a descriptor such as @daily or @every
// 2h30m) and an IANA time zone ("" is UTC). An @every schedule must be a whole number
// of minutes, at least MinEvery: "@every 1s" would otherwise start a run each second.
func Parse(expr, timeZone string) (Schedule, error) {
	if strings.Contains(expr, "TZ=") {
		return Schedule{}, errors.New("the time zone goes in timeZone, not in the cron expression")
	}
	spec, err := cron.ParseStandard(expr)
	if err != nil {
		return Schedule{}, fmt.Errorf("cron %q: %w", expr, err)
	}
	if every, ok := spec.(cron.ConstantDelaySchedule); ok && (every.Delay < MinEvery || every.Delay%time.Minute != 0) {
		return Schedule{}, fmt.Errorf("cron %q: an @every schedule must be whole minutes, at least %s apart", expr, MinEvery)
	}
	loc := time.UTC
	if timeZone != "" {
		if loc, err = time.LoadLocation(timeZone); err != nil {
			return Schedule{}, fmt.Errorf("timeZone %q: unknown time zone", timeZone)
		}
	}
	return Schedule{spec: spec, loc: loc}, nil
}

// Next is the first slot strictly after t.
func (s Schedule) Next(t time.Time) time.Time {
	for wall := s.wall(t); ; {
		wall = s.spec.Next(wall)
		if wall.IsZero() {
			return time.Time{} // a schedule that never fires (e.g. 30 February)
		}
		// A repeated hour maps to its first occurrence, which may be at or before t: then
		// it has fired already.
		if at := s.instant(wall); at.After(t) {
			return at
		}
	}
}

// instant is the first moment the zone's clock shows wall (a UTC time read as wall
// clock). time.Date guarantees neither case of a zone shift, so both are explicit: a
// wall time in a spring-forward gap never shows, and is read in the offset before the
// gap, which lands after it; of a repeated hour's two moments the earlier is taken
// (zone shifts are at most two hours, in steps of 15 minutes).
func (s Schedule) instant(wall time.Time) time.Time {
	at := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), 0, 0, s.loc)
	if !s.wall(at).Equal(wall) { // in a gap: the offset three hours earlier is the old one
		_, off := at.Add(-3 * time.Hour).Zone()
		return wall.Add(-time.Duration(off) * time.Second)
	}
	for back := 2 * time.Hour; back > 0; back -= 15 * time.Minute {
		if c := at.Add(-back); s.wall(c).Equal(wall) {
			return c
		}
	}
	return at
}

// wall is t's wall clock in the schedule's zone, as a UTC time: a clock without DST,
// on which the cron expression is evaluated.
func (s Schedule) wall(t time.Time) time.Time {
	l := t.In(s.loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// Slot is a fire decision.
type Slot struct {
	// Time is the slot to run now; zero when nothing is due.
	Time time.Time
	// Skipped says that slots after last were not run: older than the newest due slot,
	// or the newest one itself when it is past the starting deadline.
	Skipped bool
	// Next is the first slot after now, when the caller should look again.
	Next time.Time
}

// Due decides what fires at now, for a schedule that last fired (or was created) at
// last. Only the newest slot in (last, now] may run, and only when now is within
// deadline of it (0: no deadline); older ones are skipped. A slot never fires twice:
// once the caller records it as last, Due does not return it again, and the caller's
// run name derives from Slot.Time, so a lost record cannot fire it twice either.
func Due(s Schedule, last, now time.Time, deadline time.Duration) Slot {
	out := Slot{Next: s.Next(now)}
	window := deadline
	if window <= 0 {
		window = maxLookBack
	}
	from := last
	// Slots before the window cannot run (or are not worth walking): skip to it.
	if lo := now.Add(-window - time.Nanosecond); lo.After(from) {
		if t := s.Next(from); !t.IsZero() && !t.After(lo) {
			out.Skipped = true
		}
		from = lo
	}
	var newest time.Time
	for t := s.Next(from); !t.IsZero() && !t.After(now); t = s.Next(t) {
		if !newest.IsZero() {
			out.Skipped = true
		}
		newest = t
	}
	out.Time = newest
	return out
}
