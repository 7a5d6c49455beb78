package commitstatus

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/forge"
)

// A namespace whose forge never answers holds its share of the posting pool only:
// another namespace's status is posted at once.
func TestPosterIsFairBetweenNamespaces(t *testing.T) {
	p := newPoster(DefaultConcurrency)
	hang := make(chan struct{})
	defer close(hang)
	for i := range 20 {
		run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: "greedy", Name: fmt.Sprint("r", i), UID: types.UID(fmt.Sprint("u", i))}}
		p.start(run, forge.Status{State: forge.StatePending}, func(context.Context) error { <-hang; return nil })
	}
	other := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "r", UID: "o"}}
	p.start(other, forge.Status{State: forge.StateSuccess, Context: "c"}, func(context.Context) error { return nil })
	select {
	case e := <-p.wake:
		if e.Object.Namespace != "other" {
			t.Fatalf("woke %s/%s", e.Object.Namespace, e.Object.Name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the other namespace's post did not run beside a silent forge")
	}
	job, busy := p.take(other)
	if busy || job == nil || job.state != forge.StateSuccess || job.context != "c" || job.err != nil {
		t.Fatalf("take = %+v, %v", job, busy)
	}
	if job, busy := p.take(other); job != nil || busy {
		t.Errorf("a taken post was taken again")
	}
	recreated := other.DeepCopy()
	recreated.UID = "o2"
	p.start(other, forge.Status{State: forge.StatePending}, func(context.Context) error { return nil })
	<-p.wake
	if job, busy := p.take(recreated); job != nil || busy {
		t.Errorf("a post of an earlier run of the same name was given to a new one")
	}
}
