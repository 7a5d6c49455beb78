// Package controllers holds the manager-wide cache and client options the operator's
// controllers share, and the trimming of what the cache keeps (trim.go). Each
// controller is a package of its own below it (pipelinerun, trigger, commitstatus), as
// is what they share beyond the cache: metrics (the series and the endpoint), sources
// (the Secrets a repository needs, and the reasons of git errors) and testenv (the
// integration tests' API server).
package controllers

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// CacheOptions limits the manager's cache to Jobs, pods and PVCs that carry the run-UID
// label, and keeps of each only what the controllers read (see trim.go). Anyone who
// may create objects in a namespace can set the label, so an object not controlled by
// a run (or, for pods, by a Job) keeps only its name and version: a few hundred bytes.
// Pods are cached only until they finish (UnfinishedPods): the watchdogs judge pending
// pods and a stopped step's log is read from a running one, while a finished step's
// pod is read once, when its Job ends, so the cache does not grow with history.
// ConfigMaps are not cached at all; a run's definition is read once and memoised.
func CacheOptions() cache.Options { return runChildrenCache(UnfinishedPods, true) }

// ArchiveCacheOptions is the run archive's cache: the same Jobs and pods, trimmed alike,
// no PVCs, and finished pods stay (until deleted), so that a restarted archive resumes
// the logs of pods that ended while it was down.
func ArchiveCacheOptions() cache.Options { return runChildrenCache(nil, false) }

// runChildrenCache caches the Jobs, pods (those podFields selects) and, with pvcs, the
// PVCs that carry the run-UID label.
func runChildrenCache(podFields fields.Selector, pvcs bool) cache.Options {
	req, err := labels.NewRequirement(v1alpha1.LabelRunUID, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant, valid requirement
	}
	sel := labels.NewSelector().Add(*req)
	opts := cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&batchv1.Job{}: {Label: sel, Transform: TrimJob},
			&corev1.Pod{}:  {Label: sel, Field: podFields, Transform: TrimPod},
		},
	}
	if pvcs {
		// The operator's cache: PVCs, and Nodes for the node-lost watchdog.
		opts.ByObject[&corev1.PersistentVolumeClaim{}] = cache.ByObject{Label: sel, Transform: TrimPVC}
		opts.ByObject[&corev1.Node{}] = cache.ByObject{Transform: TrimNode}
	}
	return opts
}

// UnfinishedPods selects the pods that have not finished. A pod that finishes leaves the
// cache with a delete event.
var UnfinishedPods = fields.AndSelectors(
	fields.OneTermNotEqualSelector("status.phase", string(corev1.PodSucceeded)),
	fields.OneTermNotEqualSelector("status.phase", string(corev1.PodFailed)))

// ClientOptions makes the manager's client read ConfigMaps and Secrets from the API
// server, never through an informer: a Get must not start a cluster-wide watch of every
// tenant's ConfigMaps or Secrets.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.ConfigMap{}, &corev1.Secret{}}}}
}
