package pipelinerun

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

// TestOwnedByNeedsKindAndVersion: a controller reference with the run's UID but another
// kind or API version is not the run's (the definition policy matches on those).
func TestOwnedByNeedsKindAndVersion(t *testing.T) {
	run := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "r", UID: "u-1"}}
	for _, tt := range []struct {
		kind, version string
		want          bool
	}{
		{"PipelineRun", civ1alpha1.GroupVersion.String(), true},
		{"X", civ1alpha1.GroupVersion.String(), false},
		{"PipelineRun", "other.example/v1", false},
	} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{
			Kind: tt.kind, APIVersion: tt.version, Name: "r", UID: "u-1", Controller: new(true)}}}}
		if got := ownedBy(cm, run); got != tt.want {
			t.Errorf("%s %s: ownedBy = %v, want %v", tt.kind, tt.version, got, tt.want)
		}
	}
}
