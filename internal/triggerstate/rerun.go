package triggerstate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// RerunRequest is a parsed ci.flowci.dev/rerun annotation: run Run again, at the same
// commit or, with Latest, at the head the trigger last saw of its branch; or, with
// Resume, resume it in its kept workspace (spec.resumeFrom), from step From when set.
// ID makes each request new.
type RerunRequest struct {
	ID, Run        string
	Latest, Resume bool
	From           string
}

// String is the annotation's value.
func (q RerunRequest) String() string {
	switch {
	case q.Latest:
		return q.ID + " " + q.Run + " latest"
	case q.Resume && q.From != "":
		return q.ID + " " + q.Run + " resume " + q.From
	case q.Resume:
		return q.ID + " " + q.Run + " resume"
	}
	return q.ID + " " + q.Run
}

// rerunValue splits a request. A step name may hold spaces, so it is the rest of the
// value after "resume " (the name's trailing blanks are not kept).
var (
	rerunValue = regexp.MustCompile(`^\s*(\S+)\s+(\S+)(?:\s+(latest|resume)(?: (.*\S))?)?\s*$`)
	rerunID    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)
)

// maxFromLen is spec.resumeFrom.from's limit in the CRD.
const maxFromLen = 253

// ParseRerun reads a ci.flowci.dev/rerun annotation.
func ParseRerun(v string) (RerunRequest, error) {
	m := rerunValue.FindStringSubmatch(v)
	if m == nil || (m[4] != "" && m[3] != "resume") {
		return RerunRequest{}, fmt.Errorf("%s must be \"<request id> <run>\", \"<request id> <run> latest\" or \"<request id> <run> resume [<step>]\"", v1alpha1.AnnotationRerun)
	}
	if !rerunID.MatchString(m[1]) {
		return RerunRequest{}, fmt.Errorf("the request id of %s is 1 to 32 letters, digits, '.', '_' or '-'", v1alpha1.AnnotationRerun)
	}
	if errs := validation.IsDNS1123Subdomain(m[2]); len(errs) > 0 {
		return RerunRequest{}, fmt.Errorf("%s names no valid run", v1alpha1.AnnotationRerun)
	}
	if len(m[4]) > maxFromLen || strings.IndexFunc(m[4], unicode.IsControl) >= 0 {
		return RerunRequest{}, fmt.Errorf("the step of %s is at most %d bytes, without control characters", v1alpha1.AnnotationRerun, maxFromLen)
	}
	return RerunRequest{ID: m[1], Run: m[2], Latest: m[3] == "latest", Resume: m[3] == "resume", From: m[4]}, nil
}

// Refusal says why the trigger does not act on the request for source, its own run, or
// "" when it does. A resume needs a run that can be resumed (runstate.NotResumable),
// with the step it names: a resume that is refused once created fails, and posts a failure
// over the commit status (the trigger also checks the workspace, which is not source's
// to say).
func (q RerunRequest) Refusal(source *v1alpha1.PipelineRun) string {
	name := source.Name
	switch {
	case q.Latest && source.Labels[v1alpha1.LabelPullRequest] != "":
		return fmt.Sprintf("PipelineRun %q builds a pull request: run its head again without --latest, or push to it", name)
	case !q.Resume:
		return ""
	}
	if why := runstate.NotResumable(source); why != "" {
		return why
	}
	if q.From != "" && !slices.ContainsFunc(source.Status.Steps, func(s v1alpha1.StepStatus) bool { return s.Name == q.From && !s.Finally }) {
		return fmt.Sprintf("PipelineRun %q has no step %q to resume from (finally steps always run again)", name, q.From)
	}
	return ""
}
