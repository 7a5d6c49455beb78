package main

import (
	"context"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/podlogs"
)

// kubeFlags are kubectl's connection flags (--kubeconfig, --context, -n, ...) and the
// run archive's (--archive-url, ...).
type kubeFlags struct {
	config  *genericclioptions.ConfigFlags
	archive archiveFlags
}

func newKubeFlags() *kubeFlags {
	return &kubeFlags{config: genericclioptions.NewConfigFlags(true)}
}

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}()

// clients is what a cluster command talks to the API server with.
type clients struct {
	c client.WithWatch
	// logs picks step pods and reads their logs (internal/podlogs, the one reader).
	logs podlogs.Reader
	// kube is client-go's clientset, for the web view's reviews.
	kube      kubernetes.Interface
	namespace string
	// archive reads the run archive as the same user; nil without archive flags.
	archive *archiveAccess
}

func (k *kubeFlags) clients() (*clients, error) {
	cfg, err := k.config.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	ns, _, err := k.config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, err
	}
	c, err := clientsFor(cfg, ns)
	if err != nil {
		return nil, err
	}
	c.archive = &archiveAccess{flags: &k.archive, cfg: cfg, cs: c.kube}
	return c, nil
}

// clientsFor makes the clients of a rest config, for namespace ns ("" for all).
func clientsFor(cfg *rest.Config, ns string) (*clients, error) {
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &clients{c: c, logs: podlogs.Reader{Pods: cs.CoreV1(), Jobs: cs.BatchV1()}, kube: cs, namespace: ns}, nil
}

func (k *clients) getRun(ctx context.Context, name string) (*v1alpha1.PipelineRun, error) {
	run := &v1alpha1.PipelineRun{}
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: k.namespace, Name: name}, run); err != nil {
		return nil, err
	}
	return run, nil
}

// newestRun is the newest run of repoURL and branch in the namespace, found with the
// CRD's selectable fields.
func (k *clients) newestRun(ctx context.Context, repoURL, branch string) (*v1alpha1.PipelineRun, error) {
	list := &v1alpha1.PipelineRunList{}
	sel := client.MatchingFields{v1alpha1.FieldRepoURL: repoURL}
	if branch != "" {
		sel[v1alpha1.FieldBranch] = branch
	}
	if err := k.c.List(ctx, list, client.InNamespace(k.namespace), sel); err != nil {
		return nil, err
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("no run of %s (branch %q) in namespace %s", repoURL, branch, k.namespace)
	}
	sort.Slice(list.Items, func(i, j int) bool {
		a, b := list.Items[i].CreationTimestamp, list.Items[j].CreationTimestamp
		if !a.Equal(&b) {
			return b.Before(&a)
		}
		return list.Items[i].Name > list.Items[j].Name
	})
	return &list.Items[0], nil
}

// namedRun connects and reads the run a command names.
func (k *kubeFlags) namedRun(ctx context.Context, name string) (*clients, *v1alpha1.PipelineRun, error) {
	c, err := k.clients()
	if err != nil {
		return nil, nil, err
	}
	run, err := c.getRun(ctx, name)
	return c, run, err
}
