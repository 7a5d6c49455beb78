package triggerstate

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestParseRerun(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  RerunRequest
		err   bool
		value string // String() of the request, when not the input's fields joined by one space
	}{
		{"1 app-main-abc", RerunRequest{ID: "1", Run: "app-main-abc"}, false, ""},
		{"2026-12-06.1 app latest", RerunRequest{ID: "2026-12-06.1", Run: "app", Latest: true}, false, ""},
		{" 7   app \t latest ", RerunRequest{ID: "7", Run: "app", Latest: true}, false, ""},
		{"1 app resume", RerunRequest{ID: "1", Run: "app", Resume: true}, false, ""},
		{"1 app resume test", RerunRequest{ID: "1", Run: "app", Resume: true, From: "test"}, false, ""},
		{"1 app resume Unit  tests ", RerunRequest{ID: "1", Run: "app", Resume: true, From: "Unit  tests"}, false, "1 app resume Unit  tests"},
		{"1 app resume  lead", RerunRequest{ID: "1", Run: "app", Resume: true, From: " lead"}, false, "1 app resume  lead"},
		{"app", RerunRequest{}, true, ""},
		{"1 app newest", RerunRequest{}, true, ""},
		{"1 app latest test", RerunRequest{}, true, ""},
		{"1 app resume a\x00b", RerunRequest{}, true, ""},
		{"1 app resume " + strings.Repeat("s", 254), RerunRequest{}, true, ""},
		{"1 App_Name", RerunRequest{}, true, ""},
		{strings.Repeat("x", 33) + " app", RerunRequest{}, true, ""},
		{"1/2 app", RerunRequest{}, true, ""},
	} {
		got, err := ParseRerun(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseRerun(%q) = %+v, %v", tc.in, got, err)
		}
		want := tc.value
		if want == "" {
			want = strings.Join(strings.Fields(tc.in), " ")
		}
		if err == nil && got.String() != want {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), want)
		}
		if again, err := ParseRerun(got.String()); err == nil && again != got {
			t.Errorf("ParseRerun(%q) = %+v: the value does not read back", got.String(), again)
		}
	}
}

func TestRerunRefusal(t *testing.T) {
	run := func(phase v1alpha1.PipelineRunPhase, commit, pull string) *v1alpha1.PipelineRun {
		r := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "app-main-1", Labels: map[string]string{}}}
		r.Status.Phase, r.Status.Commit = phase, commit
		r.Status.Steps = []v1alpha1.StepStatus{{Name: "build"}, {Name: "test"}, {Name: "report", Finally: true}}
		if pull != "" {
			r.Labels[v1alpha1.LabelPullRequest] = pull
		}
		return r
	}
	c := strings.Repeat("c", 40)
	rerun, latest := RerunRequest{ID: "1", Run: "app-main-1"}, RerunRequest{ID: "1", Run: "app-main-1", Latest: true}
	resume := RerunRequest{ID: "1", Run: "app-main-1", Resume: true}
	from := func(step string) RerunRequest {
		return RerunRequest{ID: "1", Run: "app-main-1", Resume: true, From: step}
	}
	for _, tc := range []struct {
		name   string
		req    RerunRequest
		source *v1alpha1.PipelineRun
		refuse string // a part of the refusal; "" when the request is acted on
	}{
		{"a rerun of a running run", rerun, run(v1alpha1.PhaseRunning, c, ""), ""},
		{"a rerun of a pull request", rerun, run(v1alpha1.PhaseFailed, c, "7"), ""},
		{"the latest head of a pull request", latest, run(v1alpha1.PhaseFailed, c, "7"), "builds a pull request"},
		{"the latest head of a branch", latest, run(v1alpha1.PhaseSucceeded, c, ""), ""},
		{"a resume of a failed run", resume, run(v1alpha1.PhaseFailed, c, ""), ""},
		{"a resume of a failed pull request", resume, run(v1alpha1.PhaseFailed, c, "7"), ""},
		{"a resume of a running run", resume, run(v1alpha1.PhaseRunning, c, ""), "has not ended"},
		{"a resume of a pending run", resume, run("", "", ""), "has not ended"},
		{"a resume of a run that succeeded", resume, run(v1alpha1.PhaseSucceeded, c, ""), "succeeded: only a failed run"},
		{"a resume of a cancelled run", resume, run(v1alpha1.PhaseCancelled, c, ""), "cancelled: only a failed run"},
		{"a resume of a run without a commit", resume, run(v1alpha1.PhaseFailed, "", ""), "before it resolved a commit"},
		{"a resume from a step of the run", from("test"), run(v1alpha1.PhaseFailed, c, ""), ""},
		{"a resume from no step of the run", from("Test"), run(v1alpha1.PhaseFailed, c, ""), `no step "Test"`},
		{"a resume from a finally step", from("report"), run(v1alpha1.PhaseFailed, c, ""), `no step "report"`},
	} {
		got := tc.req.Refusal(tc.source)
		if (got == "") != (tc.refuse == "") || !strings.Contains(got, tc.refuse) {
			t.Errorf("%s: Refusal = %q, want %q", tc.name, got, tc.refuse)
		}
	}
}
