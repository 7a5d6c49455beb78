// Package controllers holds what the operator's controllers share: the manager-wide
// cache options. Each controller is a package of its own below it.
package controllers

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// CacheOptions limits the manager's cache of Jobs, pods, PVCs and ConfigMaps to objects
// that carry the run-UID label, and strips managedFields from everything it caches, so
// the operator's memory does not grow with the rest of the cluster.
func CacheOptions() cache.Options {
	req, err := labels.NewRequirement(v1alpha1.LabelRunUID, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant, valid requirement
	}
	by := cache.ByObject{Label: labels.NewSelector().Add(*req)}
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&batchv1.Job{}: by, &corev1.Pod{}: by, &corev1.PersistentVolumeClaim{}: by, &corev1.ConfigMap{}: by,
		},
	}
}
