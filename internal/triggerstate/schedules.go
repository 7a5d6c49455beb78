package triggerstate

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/schedule"
)

// Slot is a schedule's decision at a moment.
type Slot struct {
	Schedule v1alpha1.TriggerSchedule
	// Time is the slot to run now; zero when none is due.
	Time time.Time
	// Skipped: slots passed that will not run (older than the newest, or past the
	// starting deadline); the schedule's lastScheduleTime advances past them.
	Skipped bool
	// Next is the schedule's next slot.
	Next time.Time
}

// DueSlots decides, for each schedule, what is due at now. A schedule that never ran
// counts from created, the trigger's creation, so creating a trigger fires nothing from
// before it existed. Only the newest missed slot may run, within its startingDeadline.
func DueSlots(specs []v1alpha1.TriggerSchedule, st *v1alpha1.PipelineTriggerStatus, created, now time.Time) ([]Slot, error) {
	var out []Slot
	for _, spec := range specs {
		sched, err := schedule.Parse(spec.Cron, spec.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("schedules[%s]: %w", spec.Name, err)
		}
		last := created
		if ss := ScheduleStatus(st, spec.Name); ss != nil && ss.LastScheduleTime != nil {
			last = ss.LastScheduleTime.Time
		}
		d := schedule.Due(sched, last, now, spec.StartingDeadlineOrDefault())
		out = append(out, Slot{Schedule: spec, Time: d.Time, Skipped: d.Skipped, Next: d.Next})
	}
	return out, nil
}

// ScheduleStatus is the status entry of the named schedule, or nil.
func ScheduleStatus(st *v1alpha1.PipelineTriggerStatus, name string) *v1alpha1.TriggerScheduleStatus {
	for i := range st.Schedules {
		if st.Schedules[i].Name == name {
			return &st.Schedules[i]
		}
	}
	return nil
}

// SyncSchedules keeps one status entry per schedule of the spec, in its order.
func SyncSchedules(st *v1alpha1.PipelineTriggerStatus, specs []v1alpha1.TriggerSchedule) {
	var out []v1alpha1.TriggerScheduleStatus
	for _, s := range specs {
		if ss := ScheduleStatus(st, s.Name); ss != nil {
			out = append(out, *ss)
		} else {
			out = append(out, v1alpha1.TriggerScheduleStatus{Name: s.Name})
		}
	}
	st.Schedules = out
}

// RecordSlot notes that a schedule's slot at slot was handled: with run started for
// commit, or skipped (run empty). next is the slot after it.
func RecordSlot(st *v1alpha1.PipelineTriggerStatus, name string, slot, next time.Time, run, commit string) {
	ss := ScheduleStatus(st, name)
	if ss == nil {
		st.Schedules = append(st.Schedules, v1alpha1.TriggerScheduleStatus{Name: name})
		ss = &st.Schedules[len(st.Schedules)-1]
	}
	ss.LastScheduleTime = timePtr(slot)
	ss.NextScheduleTime = timePtr(next)
	if run != "" {
		ss.LastRun, ss.LastRunCommit, ss.LastRunPhase = run, commit, v1alpha1.PhasePending
		recordNewest(st, run, commit)
	}
}

// SkipSlotsUntil marks every slot up to now as handled: slots that pass while a trigger
// is suspended are skipped, at suspension and again at resumption, so a resume never
// fires a slot that passed meanwhile.
func SkipSlotsUntil(st *v1alpha1.PipelineTriggerStatus, specs []v1alpha1.TriggerSchedule, now time.Time) {
	for _, spec := range specs {
		var next time.Time
		if sched, err := schedule.Parse(spec.Cron, spec.TimeZone); err == nil {
			next = sched.Next(now)
		}
		RecordSlot(st, spec.Name, now, next, "", "")
	}
}

func timePtr(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}
