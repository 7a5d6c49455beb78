package render

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestParseResourceList(t *testing.T) {
	got, err := ParseResourceList("cpu=250m, memory=256Mi,ephemeral-storage=1Gi")
	want := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("1Gi")}
	if err != nil || !equalResources(got, want) {
		t.Errorf("ParseResourceList = %v, %v", got, err)
	}
	if got, err := ParseResourceList(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %v, %v", got, err)
	}
	for _, bad := range []string{"cpu", "gpu=1", "cpu=lots", "memory=-1Gi", "cpu=0"} {
		if _, err := ParseResourceList(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func equalResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v.Cmp(w) != 0 {
			return false
		}
	}
	return true
}
