// Package runrecord builds the archive's record of a finished run, and names the logs
// it keeps: pure functions, so that what a record holds is decided in one place.
package runrecord

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/archive"
)

// Version is the record document's format.
const Version = "flowci.dev/archive-record/v1"

// maxEvents bounds the events a record keeps (the newest).
const maxEvents = 200

// Document is what the archive keeps of a run, as JSON.
type Document struct {
	Version string `json:"version"`
	// Run is the run as it ended: its identity, labels, spec and final status.
	Run Run `json:"run"`
	// PipelineFile is the pipeline file that ran, exactly as read at the commit.
	PipelineFile string  `json:"pipelineFile,omitempty"`
	Commit       string  `json:"commit,omitempty"`
	Events       []Event `json:"events,omitempty"`
	// Logs lists the stored logs, the clone's first, then by step and start.
	Logs []Log `json:"logs,omitempty"`
	// Missing says what the archive could not keep, one sentence each.
	Missing    []string  `json:"missing,omitempty"`
	ArchivedAt time.Time `json:"archivedAt"`
}

// Run is the part of the PipelineRun a record keeps (no managed fields, no
// finalizers, no owner references: they describe the live object, not the run).
type Run struct {
	Name              string                     `json:"name"`
	Namespace         string                     `json:"namespace"`
	UID               string                     `json:"uid"`
	Labels            map[string]string          `json:"labels,omitempty"`
	Annotations       map[string]string          `json:"annotations,omitempty"`
	CreationTimestamp metav1.Time                `json:"creationTimestamp"`
	Spec              v1alpha1.PipelineRunSpec   `json:"spec"`
	Status            v1alpha1.PipelineRunStatus `json:"status"`
}

// Event is one Kubernetes event about the run.
type Event struct {
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Count   int32     `json:"count,omitempty"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
}

// Log is one stored log: the clone's or one attempt of a step.
type Log struct {
	Stream string `json:"stream"`
	Step   string `json:"step,omitempty"` // empty for the clone
	// Service names the step's service whose log this is; empty for the step's own.
	Service string `json:"service,omitempty"`
	Bytes   int64  `json:"bytes"`
	Cut     bool   `json:"cut,omitempty"`
	Missing string `json:"missing,omitempty"`
}

// StreamName names the log of one pod: "clone-<suffix>" or "step-<index>-<suffix>",
// where suffix is the pod name's generated tail, so each attempt of a step has its own.
func StreamName(component string, stepIndex int, podName string) string {
	suffix := podName
	if i := strings.LastIndexByte(podName, '-'); i >= 0 {
		suffix = podName[i+1:]
	}
	if component == v1alpha1.ComponentClone {
		return "clone-" + suffix
	}
	return fmt.Sprintf("step-%d-%s", stepIndex, suffix)
}

// ServiceStreamName names the log of a step's service in one pod:
// "service-<index>-<suffix>-<name>". StepOf does not count it as the step's own log.
func ServiceStreamName(stepIndex int, podName, service string) string {
	return "service-" + strings.TrimPrefix(StreamName(v1alpha1.ComponentStep, stepIndex, podName), "step-") + "-" + service
}

// ServiceOf reads a service's stream name back: its step index and service name; ok is
// false for any other stream.
func ServiceOf(stream string) (step int, service string, ok bool) {
	parts := strings.SplitN(stream, "-", 4)
	if len(parts) != 4 || parts[0] != "service" || parts[2] == "" || parts[3] == "" {
		return -1, "", false
	}
	i, err := strconv.Atoi(parts[1])
	if err != nil || i < 0 {
		return -1, "", false
	}
	return i, parts[3], true
}

func readingKey(stream string) (step, service int) {
	if i, _, ok := ServiceOf(stream); ok {
		return i, 1
	}
	return StepOf(stream), 0
}

// StepOf reads a stream name back: the step index, or -1 for the clone.
func StepOf(stream string) int {
	parts := strings.Split(stream, "-")
	if len(parts) != 3 || parts[0] != "step" {
		return -1
	}
	i, err := strconv.Atoi(parts[1])
	if err != nil || i < 0 {
		return -1
	}
	return i
}

// ReadingOrder says whether log a comes before log b when a run's logs are read: the
// clone's first, then by step, each step's pods in the order they ran. A pod's log
// ends before the next pod of its step starts, so pods ran in the order of the times
// of their logs' last lines (aLast, bLast; zero for a log without lines); the names
// break ties.
func ReadingOrder(a string, aLast time.Time, b string, bLast time.Time) bool {
	sa, va := readingKey(a)
	sb, vb := readingKey(b)
	if sa != sb {
		return sa < sb
	}
	if va != vb {
		return va < vb // a step's own logs, then its services'
	}
	if !aLast.Equal(bLast) {
		return aLast.Before(bLast)
	}
	return a < b
}

// New builds the record of run from what the archive read: its pipeline file, its
// events and its stored logs. Steps that ran but have no log, and logs with gaps, are
// listed as missing.
func New(run *v1alpha1.PipelineRun, file string, events []corev1.Event, streams []archive.Stream, now time.Time) (archive.Record, error) {
	doc := Document{
		Version: Version, PipelineFile: file, Commit: run.Status.Commit, ArchivedAt: now.UTC(),
		Run: Run{Name: run.Name, Namespace: run.Namespace, UID: string(run.UID), Labels: run.Labels,
			Annotations: run.Annotations, CreationTimestamp: run.CreationTimestamp, Spec: run.Spec, Status: run.Status},
		Events: newEvents(events),
	}
	doc.Logs, doc.Missing = logs(run, streams)
	raw, err := json.Marshal(doc)
	if err != nil {
		return archive.Record{}, fmt.Errorf("encoding the record of %s/%s: %w", run.Namespace, run.Name, err)
	}
	r := archive.Record{UID: string(run.UID), Namespace: run.Namespace, Name: run.Name, RepoURL: run.Spec.RepoURL,
		Branch: run.Spec.Branch, Commit: run.Status.Commit, Phase: string(run.Status.Phase),
		Created: run.CreationTimestamp.Time, Doc: raw}
	if t := run.Status.CompletionTime; t != nil {
		r.Finished = t.Time
	}
	return r, nil
}

// logs lists the stored logs in the order a reader wants them, and what is missing.
func logs(run *v1alpha1.PipelineRun, streams []archive.Stream) ([]Log, []string) {
	var out []Log
	var missing []string
	hasLog := map[int]bool{}
	for _, s := range streams {
		l := Log{Stream: s.Stream, Bytes: s.State.Bytes, Cut: s.State.Cut, Missing: s.State.Missing}
		if i := StepOf(s.Stream); i >= 0 {
			hasLog[i] = true
			if i < len(run.Status.Steps) {
				l.Step = run.Status.Steps[i].Name
			}
		} else if i, name, ok := ServiceOf(s.Stream); ok {
			l.Service = name
			if i < len(run.Status.Steps) {
				l.Step = run.Status.Steps[i].Name
			}
		}
		if l.Missing != "" {
			missing = append(missing, fmt.Sprintf("%s: %s", describe(l), l.Missing))
		}
		out = append(out, l)
	}
	last := map[string]time.Time{}
	for _, s := range streams {
		last[s.Stream] = s.State.LastTime
	}
	sort.SliceStable(out, func(a, b int) bool {
		return ReadingOrder(out[a].Stream, last[out[a].Stream], out[b].Stream, last[out[b].Stream])
	})
	for i, s := range run.Status.Steps {
		if s.StartTime != nil && !hasLog[i] && !neverStarted[s.Reason] {
			missing = append(missing, fmt.Sprintf("step %q: no log (the archive did not see its container run)", s.Name))
		}
	}
	return out, missing
}

// neverStarted are the step reasons whose container never ran, so it has no log.
var neverStarted = map[string]bool{
	v1alpha1.ReasonUnschedulable: true, v1alpha1.ReasonImagePullFailed: true,
	v1alpha1.ReasonCreateContainerFailed: true, v1alpha1.ReasonCancelled: true, v1alpha1.ReasonServiceNotReady: true,
}

func describe(l Log) string {
	if l.Service != "" {
		return fmt.Sprintf("service %q of step %q (%s)", l.Service, l.Step, l.Stream)
	}
	if l.Step == "" && StepOf(l.Stream) < 0 {
		return "the clone"
	}
	return fmt.Sprintf("step %q (%s)", l.Step, l.Stream)
}

func newEvents(events []corev1.Event) []Event {
	sort.SliceStable(events, func(a, b int) bool { return eventTime(events[a]).Before(eventTime(events[b])) })
	if len(events) > maxEvents {
		events = events[len(events)-maxEvents:]
	}
	out := make([]Event, 0, len(events))
	for _, e := range events {
		first := e.FirstTimestamp.Time
		if first.IsZero() {
			first = e.EventTime.Time
		}
		out = append(out, Event{Type: e.Type, Reason: e.Reason, Message: e.Message, Count: e.Count,
			First: first, Last: eventTime(e)})
	}
	return out
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}

// Decode reads a record's document, as the archive's readers get it.
func Decode(raw []byte) (Document, error) {
	var doc Document
	if len(raw) == 0 {
		return doc, fmt.Errorf("%w: the archive holds no record of this run yet", archive.ErrNotFound)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return doc, fmt.Errorf("the archive's record is not one this version reads: %w", err)
	}
	return doc, nil
}

// PipelineRun is the run as the record keeps it, as an object: its identity, labels,
// annotations, spec and final status.
func (d Document) PipelineRun() *v1alpha1.PipelineRun {
	r := d.Run
	return &v1alpha1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: r.Namespace, UID: types.UID(r.UID), Labels: r.Labels,
			Annotations: r.Annotations, CreationTimestamp: r.CreationTimestamp},
		Spec: r.Spec, Status: r.Status,
	}
}
