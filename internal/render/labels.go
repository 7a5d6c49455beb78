package render

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Labels returns the labels of a run's child of the given component.
func Labels(run *v1alpha1.PipelineRun, component string) map[string]string {
	return map[string]string{
		v1alpha1.LabelRun:       labelValue(run.Name),
		v1alpha1.LabelRunUID:    labelValue(string(run.UID)),
		v1alpha1.LabelComponent: component,
	}
}

// stepLabels adds the step's index and name to Labels(run, "step").
func stepLabels(run *v1alpha1.PipelineRun, index int, stepName string) map[string]string {
	l := Labels(run, v1alpha1.ComponentStep)
	l[v1alpha1.LabelStepIndex] = strconv.Itoa(index)
	l[v1alpha1.LabelStep] = labelValue(stepName)
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
