package triggerstate

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func utc(day, hour, minute int) time.Time {
	return time.Date(2026, 3, day, hour, minute, 0, 0, time.UTC)
}

func nightly(deadline time.Duration) v1alpha1.TriggerSchedule {
	return v1alpha1.TriggerSchedule{Name: "nightly", Cron: "0 3 * * *", Branch: "main", StartingDeadline: &metav1.Duration{Duration: deadline}}
}

// TestDueSlots walks a schedule through the cases peers got wrong: slots before the
// trigger existed, a second pass in the same minute (Argo #2694), downtime (one missed
// slot, within the deadline), suspend and resume (Argo #4445), and DST in a time zone.
func TestDueSlots(t *testing.T) {
	created := utc(1, 2, 50)
	withLast := func(last time.Time) *v1alpha1.PipelineTriggerStatus {
		st := &v1alpha1.PipelineTriggerStatus{}
		RecordSlot(st, "nightly", last, time.Time{}, "", "")
		return st
	}
	cases := []struct {
		name        string
		spec        v1alpha1.TriggerSchedule
		st          *v1alpha1.PipelineTriggerStatus
		now         time.Time
		wantSlot    time.Time
		wantSkipped bool
		wantNext    time.Time
	}{
		{name: "nothing before the first slot", spec: nightly(time.Hour), st: &v1alpha1.PipelineTriggerStatus{},
			now: utc(1, 2, 59), wantNext: utc(1, 3, 0)},
		{name: "the first slot after creation fires", spec: nightly(time.Hour), st: &v1alpha1.PipelineTriggerStatus{},
			now: utc(1, 3, 0), wantSlot: utc(1, 3, 0), wantNext: utc(2, 3, 0)},
		{name: "a recorded slot never fires again, however often the pass runs", spec: nightly(time.Hour),
			st: withLast(utc(1, 3, 0)), now: utc(1, 3, 0).Add(40 * time.Second), wantNext: utc(2, 3, 0)},
		{name: "after three days down, only the newest slot runs", spec: nightly(time.Hour),
			st: withLast(utc(1, 3, 0)), now: utc(4, 3, 30), wantSlot: utc(4, 3, 0), wantSkipped: true, wantNext: utc(5, 3, 0)},
		{name: "past the starting deadline, nothing runs", spec: nightly(time.Hour),
			st: withLast(utc(1, 3, 0)), now: utc(4, 4, 1), wantSkipped: true, wantNext: utc(5, 3, 0)},
		{name: "a zero deadline means any delay is fine", spec: nightly(0),
			st: withLast(utc(1, 3, 0)), now: utc(1, 23, 0), wantNext: utc(2, 3, 0)},
		{name: "Berlin 02:30 on the spring-forward day runs once, an hour late in wall time",
			spec: v1alpha1.TriggerSchedule{Name: "nightly", Cron: "30 2 * * *", TimeZone: "Europe/Berlin", Branch: "main"},
			st:   withLast(utc(28, 1, 30)), now: utc(29, 1, 30), wantSlot: utc(29, 1, 30), wantNext: utc(30, 0, 30)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			slots, err := DueSlots([]v1alpha1.TriggerSchedule{c.spec}, c.st, created, c.now)
			if err != nil {
				t.Fatal(err)
			}
			s := slots[0]
			if !s.Time.Equal(c.wantSlot) || s.Skipped != c.wantSkipped || !s.Next.Equal(c.wantNext) {
				t.Errorf("got slot %v skipped %v next %v; want %v %v %v", s.Time, s.Skipped, s.Next, c.wantSlot, c.wantSkipped, c.wantNext)
			}
		})
	}
}

// TestSlotFiresOnce runs a per-minute schedule pass after pass, recording what fires as
// the controller does: every minute fires exactly once.
func TestSlotFiresOnce(t *testing.T) {
	spec := v1alpha1.TriggerSchedule{Name: "minutely", Cron: "* * * * *", Branch: "main"}
	st := &v1alpha1.PipelineTriggerStatus{}
	created := utc(1, 3, 0)
	fired := map[time.Time]int{}
	for now := created; now.Before(created.Add(5 * time.Minute)); now = now.Add(7 * time.Second) {
		slots, err := DueSlots([]v1alpha1.TriggerSchedule{spec}, st, created, now)
		if err != nil {
			t.Fatal(err)
		}
		if s := slots[0]; !s.Time.IsZero() {
			fired[s.Time]++
			RecordSlot(st, spec.Name, s.Time, s.Next, "run", "c")
		}
	}
	if len(fired) != 4 {
		t.Errorf("fired %d distinct slots in 5 minutes after creation, want 4 (03:01..03:04): %v", len(fired), fired)
	}
	for slot, n := range fired {
		if n != 1 {
			t.Errorf("slot %v fired %d times", slot, n)
		}
	}
}

// TestSuspendSkipsSlots: slots that pass while suspended do not fire at resume.
func TestSuspendSkipsSlots(t *testing.T) {
	spec := nightly(24 * time.Hour)
	st := &v1alpha1.PipelineTriggerStatus{}
	SkipSlotsUntil(st, []v1alpha1.TriggerSchedule{spec}, utc(1, 2, 0)) // suspended
	resume := utc(1, 5, 0)
	SkipSlotsUntil(st, []v1alpha1.TriggerSchedule{spec}, resume) // resumed: 03:00 passed meanwhile
	slots, err := DueSlots([]v1alpha1.TriggerSchedule{spec}, st, utc(1, 0, 0), resume.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !slots[0].Time.IsZero() {
		t.Errorf("the slot that passed while suspended fired at resume: %v", slots[0].Time)
	}
	if got := ScheduleStatus(st, "nightly").NextScheduleTime.Time; !got.Equal(utc(2, 3, 0)) {
		t.Errorf("next slot %v, want %v", got, utc(2, 3, 0))
	}
}

func TestDueSlotsInvalid(t *testing.T) {
	for _, spec := range []v1alpha1.TriggerSchedule{
		{Name: "bad", Cron: "61 * * * *"},
		{Name: "zone", Cron: "0 3 * * *", TimeZone: "Mars/Olympus"},
	} {
		if _, err := DueSlots([]v1alpha1.TriggerSchedule{spec}, &v1alpha1.PipelineTriggerStatus{}, utc(1, 0, 0), utc(1, 1, 0)); err == nil {
			t.Errorf("%+v: no error", spec)
		}
	}
}
