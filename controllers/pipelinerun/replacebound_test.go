package pipelinerun

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// TestReplaceBound: a run replaces the runs older than itself; a resume or a trigger's
// rerun only those older than the run it continues, and none when that run is gone.
func TestReplaceBound(t *testing.T) {
	run := func(name string, mutate func(*v1alpha1.PipelineRun)) *v1alpha1.PipelineRun {
		r := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if mutate != nil {
			mutate(r)
		}
		return r
	}
	first := run("first", nil)
	group := []*v1alpha1.PipelineRun{first, run("second", nil)}
	resume := run("resume", func(r *v1alpha1.PipelineRun) { r.Spec.ResumeFrom = &v1alpha1.ResumeSource{Run: "first"} })
	rerun := run("rerun", func(r *v1alpha1.PipelineRun) { r.Labels = map[string]string{v1alpha1.LabelRerunOf: "first"} })
	orphan := run("orphan", func(r *v1alpha1.PipelineRun) { r.Spec.ResumeFrom = &v1alpha1.ResumeSource{Run: "deleted"} })
	for _, c := range []struct {
		run, want *v1alpha1.PipelineRun
	}{{group[1], group[1]}, {resume, first}, {rerun, first}, {orphan, nil}} {
		if got := replaceBound(c.run, group); got != c.want {
			t.Errorf("replaceBound(%s) = %v, want %v", c.run.Name, got, c.want)
		}
	}
}
