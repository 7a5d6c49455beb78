package triggerstate

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// RerunRequest is a parsed ci.flowci.dev/rerun annotation: run Run again, at the same
// commit or, with Latest, at the head the trigger last saw of its branch. ID makes each
// request new.
type RerunRequest struct {
	ID, Run string
	Latest  bool
}

// String is the annotation's value.
func (q RerunRequest) String() string {
	if q.Latest {
		return q.ID + " " + q.Run + " latest"
	}
	return q.ID + " " + q.Run
}

var rerunID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

// ParseRerun reads a ci.flowci.dev/rerun annotation.
func ParseRerun(v string) (RerunRequest, error) {
	f := strings.Fields(v)
	if len(f) < 2 || len(f) > 3 || (len(f) == 3 && f[2] != "latest") {
		return RerunRequest{}, fmt.Errorf("%s must be \"<request id> <run>\" or \"<request id> <run> latest\"", v1alpha1.AnnotationRerun)
	}
	if !rerunID.MatchString(f[0]) {
		return RerunRequest{}, fmt.Errorf("the request id of %s is 1 to 32 letters, digits, '.', '_' or '-'", v1alpha1.AnnotationRerun)
	}
	if errs := validation.IsDNS1123Subdomain(f[1]); len(errs) > 0 {
		return RerunRequest{}, fmt.Errorf("%s names no valid run", v1alpha1.AnnotationRerun)
	}
	return RerunRequest{ID: f[0], Run: f[1], Latest: len(f) == 3}, nil
}
