package runrecord

import (
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/archive"
)

func TestStreamName(t *testing.T) {
	cases := []struct {
		component string
		index     int
		pod       string
		want      string
		step      int
	}{
		{v1alpha1.ComponentClone, 0, "build-7xk2p-clone-abcde", "clone-abcde", -1},
		{v1alpha1.ComponentStep, 3, "build-7xk2p-3-test-q1w2e", "step-3-q1w2e", 3},
		{v1alpha1.ComponentStep, 12, "x-zzzzz", "step-12-zzzzz", 12},
	}
	for _, tc := range cases {
		got := StreamName(tc.component, tc.index, tc.pod)
		if got != tc.want {
			t.Errorf("StreamName(%s, %d, %s) = %s, want %s", tc.component, tc.index, tc.pod, got, tc.want)
		}
		if s := StepOf(got); s != tc.step {
			t.Errorf("StepOf(%s) = %d, want %d", got, s, tc.step)
		}
	}
	// A service's log is not its step's: readers of the step's attempts skip it.
	if got, want := ServiceStreamName(3, "build-7xk2p-3-test-q1w2e", "pg-main"), "service-3-q1w2e-pg-main"; got != want || StepOf(got) != -1 {
		t.Errorf("ServiceStreamName = %s (StepOf %d), want %s (StepOf -1)", got, StepOf(got), want)
	}
	if i, name, ok := ServiceOf("service-3-q1w2e-pg-main"); !ok || i != 3 || name != "pg-main" {
		t.Errorf("ServiceOf = %d %q %v", i, name, ok)
	}
	for _, bad := range []string{"step-3-q1w2e", "service-x-q-a", "service-3-q", "service--1-q-a", "service-3--a"} {
		if _, _, ok := ServiceOf(bad); ok {
			t.Errorf("ServiceOf(%q) ok", bad)
		}
	}
	// A step's own logs come before its services', and both before the next step's.
	names := []string{"service-0-b-db", "step-1-c", "step-0-a", "clone-x"}
	sort.SliceStable(names, func(a, b int) bool { return ReadingOrder(names[a], time.Time{}, names[b], time.Time{}) })
	if want := []string{"clone-x", "step-0-a", "service-0-b-db", "step-1-c"}; !reflect.DeepEqual(names, want) {
		t.Errorf("reading order %q, want %q", names, want)
	}
	for _, bad := range []string{"", "step", "step-x-abc", "step--1-abc", "clone", "step-1-a-b"} {
		if s := StepOf(bad); s != -1 {
			t.Errorf("StepOf(%q) = %d, want -1", bad, s)
		}
	}
}

func TestReadingOrder(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	type log struct {
		stream string
		last   time.Time
	}
	for _, tc := range []struct {
		name string
		a, b log
		want bool
	}{
		{"the clone before a step", log{"clone-zzzzz", t0.Add(time.Hour)}, log{"step-0-aaaaa", t0}, true},
		{"a step before a later one", log{"step-1-aaaaa", t0}, log{"step-10-aaaaa", t0}, true},
		{"a later step after", log{"step-2-aaaaa", t0}, log{"step-1-zzzzz", t0.Add(time.Hour)}, false},
		{"a step's pods in the order they ran", log{"step-1-zzzzz", t0}, log{"step-1-aaaaa", t0.Add(time.Second)}, true},
		{"a pod that ran later after", log{"step-1-aaaaa", t0.Add(time.Second)}, log{"step-1-zzzzz", t0}, false},
		{"a pod without lines first", log{"step-1-zzzzz", time.Time{}}, log{"step-1-aaaaa", t0}, true},
		{"the names break a tie", log{"step-1-aaaaa", t0}, log{"step-1-bbbbb", t0}, true},
		{"a log is not before itself", log{"step-1-aaaaa", t0}, log{"step-1-aaaaa", t0}, false},
	} {
		if got := ReadingOrder(tc.a.stream, tc.a.last, tc.b.stream, tc.b.last); got != tc.want {
			t.Errorf("%s: ReadingOrder(%v, %v) = %v", tc.name, tc.a, tc.b, got)
		}
	}
}

func TestNew(t *testing.T) {
	start := metav1.NewTime(time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	end := metav1.NewTime(start.Add(time.Minute))
	run := &v1alpha1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{Name: "build-1", Namespace: "team-a", UID: "u-1", CreationTimestamp: start,
			Finalizers: []string{"x"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
		Spec: v1alpha1.PipelineRunSpec{RepoURL: "https://git.example/a.git", Branch: "main"},
		Status: v1alpha1.PipelineRunStatus{Phase: "Failed", Commit: "0123456789abcdef", CompletionTime: &end,
			Steps: []v1alpha1.StepStatus{
				{Name: "build", Index: 0, StartTime: &start},
				{Name: "test", Index: 1, StartTime: &start},
				{Name: "pull", Index: 2, StartTime: &start, Reason: v1alpha1.ReasonImagePullFailed},
				{Name: "never", Index: 3},
			}},
	}
	events := []corev1.Event{
		{Type: "Normal", Reason: "Started", Message: "late", LastTimestamp: metav1.NewTime(start.Add(2 * time.Second))},
		{Type: "Warning", Reason: "StepFailed", Message: "early", LastTimestamp: metav1.NewTime(start.Add(time.Second))},
	}
	streams := []archive.Stream{
		{Stream: "step-0-aaaaa", State: archive.LogState{Bytes: 10, Done: true, LastTime: start.Add(2 * time.Second)}},
		{Stream: "clone-bbbbb", State: archive.LogState{Bytes: 5, Done: true, Missing: "after byte 5"}},
		{Stream: "step-0-zzzzz", State: archive.LogState{Bytes: 10, Done: true, LastTime: start.Add(time.Second)}},
	}
	r, err := New(run, "steps: []\n", events, streams, end.Time)
	if err != nil {
		t.Fatal(err)
	}
	if r.UID != "u-1" || r.Namespace != "team-a" || r.Name != "build-1" || r.Phase != "Failed" ||
		r.Commit != "0123456789abcdef" || r.Branch != "main" || !r.Created.Equal(start.Time) || !r.Finished.Equal(end.Time) {
		t.Errorf("indexed fields: %+v", r)
	}
	var doc Document
	if err := json.Unmarshal(r.Doc, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.PipelineFile != "steps: []\n" || doc.Run.Status.Phase != "Failed" || doc.Run.Spec.RepoURL != run.Spec.RepoURL {
		t.Errorf("document: %+v", doc)
	}
	if got := []string{doc.Events[0].Message, doc.Events[1].Message}; !reflect.DeepEqual(got, []string{"early", "late"}) {
		t.Errorf("events in order: %v", got)
	}
	if got := []string{doc.Logs[0].Stream, doc.Logs[1].Stream, doc.Logs[2].Stream}; !reflect.DeepEqual(got, []string{"clone-bbbbb", "step-0-zzzzz", "step-0-aaaaa"}) {
		t.Errorf("logs in order: %v", got)
	}
	if doc.Logs[1].Step != "build" {
		t.Errorf("step name of a log: %q", doc.Logs[1].Step)
	}
	wantMissing := []string{`the clone: after byte 5`, `step "test": no log (the archive did not see its container run)`}
	if !reflect.DeepEqual(doc.Missing, wantMissing) {
		t.Errorf("missing = %q, want %q", doc.Missing, wantMissing)
	}
	back, err := Decode(r.Doc)
	if err != nil {
		t.Fatal(err)
	}
	obj := back.PipelineRun()
	if obj.Name != "build-1" || obj.Namespace != "team-a" || obj.UID != "u-1" || !obj.CreationTimestamp.Equal(&start) ||
		obj.Spec.Branch != "main" || len(obj.Status.Steps) != 4 || len(obj.Finalizers) > 0 {
		t.Errorf("the record as a PipelineRun: %+v", obj)
	}
	if _, err := Decode(nil); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("no record: %v", err)
	}
	var raw map[string]map[string]any
	_ = json.Unmarshal(r.Doc, &raw)
	for _, k := range []string{"finalizers", "managedFields"} {
		if _, ok := raw["run"][k]; ok {
			t.Errorf("the record keeps the live object's %s", k)
		}
	}
}

func TestNewEventsKeepsTheNewest(t *testing.T) {
	var events []corev1.Event
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range maxEvents + 50 {
		events = append(events, corev1.Event{Reason: "R", LastTimestamp: metav1.NewTime(base.Add(time.Duration(i) * time.Second))})
	}
	got := newEvents(events)
	if len(got) != maxEvents || !got[0].Last.Equal(base.Add(50*time.Second)) {
		t.Errorf("kept %d events from %v", len(got), got[0].Last)
	}
}
