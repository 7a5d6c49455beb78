package archive

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers"
	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/runrecord"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// maxEventsRead bounds the events listed for a record.
const maxEventsRead = 500

// archive stores the run's record, then lets the run go.
func (r *Reconciler) archive(ctx context.Context, run *v1alpha1.PipelineRun, reason string) error {
	file, err := r.pipelineFile(ctx, run)
	if err != nil {
		return err
	}
	var events corev1.EventList
	if err := r.APIReader.List(ctx, &events, client.InNamespace(run.Namespace), client.Limit(maxEventsRead),
		client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("involvedObject.uid", string(run.UID))}); err != nil {
		return fmt.Errorf("listing the events of %s: %w", run.Name, err)
	}
	streams, err := r.Store.Streams(ctx, string(run.UID))
	if err != nil {
		r.Metrics.error("record")
		return fmt.Errorf("listing the stored logs of %s: %w", run.Name, err)
	}
	rec, err := runrecord.New(run, file, events.Items, streams, r.now())
	if err != nil {
		return err
	}
	if err := r.finishCaches(ctx, run); err != nil {
		return err
	}
	if err := r.Store.PutRecord(ctx, rec); err != nil {
		r.Metrics.error("record")
		return fmt.Errorf("storing the record of %s: %w", run.Name, err)
	}
	r.Metrics.records.Inc()
	r.markRecorded(string(run.UID))
	r.streams.forget(string(run.UID))
	return r.release(ctx, run, reason)
}

// pipelineFile is the pipeline file the run ran: its definition ConfigMap's, if the run
// controls one (by UID); "" when the run never read one.
func (r *Reconciler) pipelineFile(ctx context.Context, run *v1alpha1.PipelineRun) (string, error) {
	var cms corev1.ConfigMapList
	if err := r.APIReader.List(ctx, &cms, client.InNamespace(run.Namespace), client.Limit(4),
		client.MatchingLabels{v1alpha1.LabelRunUID: string(run.UID), v1alpha1.LabelComponent: v1alpha1.ComponentDefinition}); err != nil {
		return "", fmt.Errorf("reading the pipeline file of %s: %w", run.Name, err)
	}
	for i := range cms.Items {
		if ref := metav1.GetControllerOf(&cms.Items[i]); ref != nil && ref.UID == run.UID {
			return cms.Items[i].Data[v1alpha1.DefinitionKey], nil
		}
	}
	return "", nil
}

// hold adds the archive's finalizer, so that the run waits for its record.
func (r *Reconciler) hold(ctx context.Context, run *v1alpha1.PipelineRun) error {
	if _, err := controllers.SetFinalizer(ctx, r.Client, run, v1alpha1.FinalizerArchive, true); err != nil && !apierrors.IsConflict(err) {
		// (On a conflict, the newer version's watch event brings another pass.)
		return client.IgnoreNotFound(fmt.Errorf("holding %s for the archive: %w", run.Name, err))
	}
	return nil
}

// release removes the archive's finalizer.
func (r *Reconciler) release(ctx context.Context, run *v1alpha1.PipelineRun, reason string) error {
	changed, err := controllers.SetFinalizer(ctx, r.Client, run, v1alpha1.FinalizerArchive, false)
	if apierrors.IsConflict(err) {
		// The cached copy is older than the run (often: it still shows the finalizer this
		// archive already removed). The newer version's watch event brings another pass.
		return nil
	}
	if err != nil {
		r.Metrics.error("release")
		return client.IgnoreNotFound(fmt.Errorf("releasing %s: %w", run.Name, err))
	}
	if changed {
		r.Metrics.released.WithLabelValues(reason).Inc()
	}
	return nil
}

// giveUp stops the run's streams once it has been deleted for longer than Hold, and
// marks what they had not read as missing.
func (r *Reconciler) giveUp(ctx context.Context, run *v1alpha1.PipelineRun) {
	why := fmt.Sprintf("the run was deleted and the archive stopped waiting after %s (--hold)", r.Hold)
	for _, k := range r.streams.stop(string(run.UID)) {
		s := r.newStreamer(logSource{key: k})
		if err := s.finish(ctx, why); err != nil {
			r.Log.Error(err, "recording a log's gap", "namespace", k.Namespace, "stream", k.Stream)
		}
	}
}

type podStream struct{ stream, container string }

// streamsOf names a pod's logs and their containers from the pod's labels: the clone's,
// or a step's and each of its services' (named in its init container statuses, which
// the trimmed cache keeps).
func streamsOf(pod *corev1.Pod) []podStream {
	switch pod.Labels[v1alpha1.LabelComponent] {
	case v1alpha1.ComponentClone:
		return []podStream{{runrecord.StreamName(v1alpha1.ComponentClone, 0, pod.Name), "clone"}}
	case v1alpha1.ComponentStep:
		i, err := strconv.Atoi(pod.Labels[v1alpha1.LabelStepIndex])
		if err != nil || i < 0 {
			return nil
		}
		out := []podStream{{runrecord.StreamName(v1alpha1.ComponentStep, i, pod.Name), "step"}}
		for _, cs := range pod.Status.InitContainerStatuses {
			if name, ok := strings.CutPrefix(cs.Name, v1alpha1.ServiceContainerPrefix); ok && len(out) <= pipeline.MaxServices {
				out = append(out, podStream{runrecord.ServiceStreamName(i, pod.Name, name), cs.Name})
			}
		}
		return out
	}
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, archive.ErrNotFound) }
