package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestDescribeFiles(t *testing.T) {
	var b bytes.Buffer
	describeFiles(newScreen(&b), v1alpha1.PipelineRunStatus{
		Artifacts: &v1alpha1.ArtifactTotals{Count: 3, Bytes: 7336163},
		Caches: []v1alpha1.CacheStatus{
			{Name: "go", Key: "go-3f2a", RestoredKey: "go-3f2a", RestoredFrom: "main", RestoredBytes: 1366, RestoreTime: &metav1.Duration{Duration: 384 * time.Millisecond},
				Message: "unchanged since its restore: not saved"},
			{Name: "web", Key: "web-9", Saved: true, SavedBytes: 99, SaveTime: &metav1.Duration{Duration: 2 * time.Second}, Message: "no entry matches its key or restore keys"},
		},
	})
	for _, want := range []string{
		"Artifacts:  3 files, 7336163 bytes",
		"go  key go-3f2a  restored go-3f2a from main (1366 bytes in 384ms)  unchanged since its restore: not saved",
		"web  key web-9  not restored  saved (99 bytes in 2s)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("describe lacks %q:\n%s", want, b.String())
		}
	}
}
