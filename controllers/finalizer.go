package controllers

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// SetFinalizer adds finalizer to obj (on) or removes it, with a merge patch that
// carries obj's resourceVersion: a patch built from a stale copy fails with a conflict
// instead of dropping a finalizer another writer added meanwhile (a merge patch
// replaces the whole list). It writes nothing when obj is already so, and changed says
// whether it wrote. obj is updated in place, also when the write fails: read it again
// before another try.
func SetFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string, on bool) (changed bool, err error) {
	if controllerutil.ContainsFinalizer(obj, finalizer) == on {
		return false, nil
	}
	base, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return false, fmt.Errorf("a copy of %T is not a client.Object", obj)
	}
	if on {
		controllerutil.AddFinalizer(obj, finalizer)
	} else {
		controllerutil.RemoveFinalizer(obj, finalizer)
	}
	if err := c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return false, err
	}
	return true, nil
}
