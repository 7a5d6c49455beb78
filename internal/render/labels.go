package render

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Labels on every child of a run (Jobs, their pod templates and the PVC).
const (
	// LabelRun is the run's name, shortened and hashed when it does not fit
	// a label value. For humans and kubectl; use LabelRunUID to select.
	LabelRun = "flowci.dev/pipelinerun"
	// LabelRunUID is the run's UID: the selector the controller lists
	// children by, since a name can be reused by a later run.
	LabelRunUID = "flowci.dev/pipelinerun-uid"
	// LabelStepIndex is the step's index in the pipeline, "0", "1", ...
	// (step Jobs only).
	LabelStepIndex = "flowci.dev/step-index"
	// LabelStep is the step's name made into a valid label value (step Jobs
	// only). Not unique: two names may sanitise equally; use LabelStepIndex.
	LabelStep = "flowci.dev/step"
	// LabelComponent says which kind of child an object is.
	LabelComponent = "flowci.dev/component"
)

// Values of LabelComponent.
const (
	ComponentWorkspace = "workspace"
	ComponentClone     = "clone"
	ComponentStep      = "step"
)

// Labels returns the labels of a run's child of the given component.
func Labels(run *v1alpha1.PipelineRun, component string) map[string]string {
	return map[string]string{
		LabelRun:       labelValue(run.Name),
		LabelRunUID:    labelValue(string(run.UID)),
		LabelComponent: component,
	}
}

// stepLabels adds the step's index and name to Labels(run, "step").
func stepLabels(run *v1alpha1.PipelineRun, index int, stepName string) map[string]string {
	l := Labels(run, ComponentStep)
	l[LabelStepIndex] = strconv.Itoa(index)
	l[LabelStep] = labelValue(stepName)
	return l
}

// labelValue returns s if it is a valid label value. Otherwise each run of
// invalid characters becomes one '-', the ends are trimmed to alphanumerics,
// and a result longer than 63 characters is cut and suffixed with a hash of s
// so long values that share a prefix stay distinct.
func labelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	var b strings.Builder
	dash := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isLabelChar(c) {
			b.WriteByte(c)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimFunc(b.String(), func(r rune) bool { return !isAlnumAnyCase(byte(r)) })
	if len(out) <= validation.LabelValueMaxLength {
		return out
	}
	// out starts with an alphanumeric, so this cannot empty it.
	out = strings.TrimRightFunc(out[:validation.LabelValueMaxLength-1-hashLen], func(r rune) bool { return !isAlnumAnyCase(byte(r)) })
	return out + "-" + shortHash(s)
}

func isLabelChar(c byte) bool {
	return isAlnumAnyCase(c) || c == '-' || c == '_' || c == '.'
}

func isAlnumAnyCase(c byte) bool {
	return isAlnum(c) || 'A' <= c && c <= 'Z'
}
