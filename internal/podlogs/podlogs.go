// Package podlogs reads bounded tails of pod logs through the pods/log subresource. The
// controller, the CLI and the web view share it, so a chatty step costs each of them at
// most a few KiB.
package podlogs

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Limits of a tail read.
const (
	// TailLines is the number of lines a tail keeps.
	TailLines = 80
	// TailBytes bounds a tail in bytes: a tail fits a status message.
	TailBytes = v1alpha1.MaxMessageBytes
)

// Reader reads pod logs with a client-go pods client.
type Reader struct {
	Pods typedcorev1.PodsGetter
}

// TailLog returns the last TailLines lines of the container's log, at most TailBytes.
func (r Reader) TailLog(ctx context.Context, namespace, pod, container string) (string, error) {
	lines, limit := int64(TailLines), int64(TailBytes)
	opts := &corev1.PodLogOptions{Container: container, TailLines: &lines, LimitBytes: &limit}
	b, err := r.Pods.Pods(namespace).GetLogs(pod, opts).DoRaw(ctx)
	return string(b), err
}
