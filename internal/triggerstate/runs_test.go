package triggerstate

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestRecordCreated(t *testing.T) {
	ref := func(i int) v1alpha1.TriggerRunRef {
		return v1alpha1.TriggerRunRef{Name: fmt.Sprintf("r%d", i), UID: fmt.Sprintf("u%d", i)}
	}
	for _, tc := range []struct {
		name  string
		prev  []v1alpha1.TriggerRunRef
		add   v1alpha1.TriggerRunRef
		first []v1alpha1.TriggerRunRef
		size  int
	}{
		{"first", nil, ref(1), []v1alpha1.TriggerRunRef{ref(1)}, 1},
		{"newest first", []v1alpha1.TriggerRunRef{ref(1)}, ref(2), []v1alpha1.TriggerRunRef{ref(2), ref(1)}, 2},
		{"an adopted run moves to the front once", []v1alpha1.TriggerRunRef{ref(2), ref(1)}, ref(1), []v1alpha1.TriggerRunRef{ref(1), ref(2)}, 2},
		{"bounded: the oldest goes", refs(v1alpha1.MaxTriggerRuns), ref(-1), []v1alpha1.TriggerRunRef{ref(-1), ref(0)}, v1alpha1.MaxTriggerRuns},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &v1alpha1.PipelineTriggerStatus{Runs: tc.prev}
			RecordCreated(st, tc.add.Name, tc.add.UID)
			if len(st.Runs) != tc.size {
				t.Fatalf("%d runs recorded, want %d", len(st.Runs), tc.size)
			}
			if d := cmp.Diff(tc.first, st.Runs[:len(tc.first)]); d != "" {
				t.Errorf("runs (-want +got):\n%s", d)
			}
			if !Created(st, tc.add.UID) || Created(st, "other") || Created(st, "") {
				t.Errorf("Created disagrees with the record")
			}
			if tc.size == v1alpha1.MaxTriggerRuns && Created(st, fmt.Sprintf("u%d", v1alpha1.MaxTriggerRuns-1)) {
				t.Errorf("the oldest run is still recorded")
			}
		})
	}
}

func refs(n int) []v1alpha1.TriggerRunRef {
	out := make([]v1alpha1.TriggerRunRef, n)
	for i := range out {
		out[i] = v1alpha1.TriggerRunRef{Name: fmt.Sprintf("r%d", i), UID: fmt.Sprintf("u%d", i)}
	}
	return out
}
