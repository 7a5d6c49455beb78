package pipelinerun

import (
	"context"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ArchiveTarget finds the archive for the step pods that upload artifacts: the
// certificate it serves (its ConfigMap, key ca.crt), which they trust alone, and, unless
// a URL is configured, its Service's cluster IP, since clusters without DNS for pods
// exist and the archive's certificate names that IP. The archive may be installed after
// the operator, or its certificate replaced: answers are kept for a minute.
type ArchiveTarget struct {
	// Reader is the operator's API reader: ConfigMaps and Services are never cached.
	Reader client.Reader
	// ConfigMap names the ConfigMap; an empty name turns uploads off.
	ConfigMap client.ObjectKey
	// Service names the archive's Service, in the ConfigMap's namespace.
	Service string
	// URL, when set, is used instead of the Service's cluster IP.
	URL string

	mu      sync.Mutex
	pem     string
	url     string
	checked time.Time
}

// archiveTTL is how long a read (or its absence) is kept.
const archiveTTL = time.Minute

// Get is the archive's URL and certificate (PEM), or empty strings when there is no
// archive.
func (a *ArchiveTarget) Get(ctx context.Context) (string, string) {
	if a == nil || a.ConfigMap.Name == "" {
		return "", ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if time.Since(a.checked) < archiveTTL {
		return a.url, a.pem
	}
	cm := &corev1.ConfigMap{}
	err := a.Reader.Get(ctx, a.ConfigMap, cm)
	if err != nil && client.IgnoreNotFound(err) != nil && a.pem != "" {
		return a.url, a.pem // a failed read keeps the last answer
	}
	url := a.URL
	if url == "" && err == nil {
		svc := &corev1.Service{}
		if a.Reader.Get(ctx, client.ObjectKey{Namespace: a.ConfigMap.Namespace, Name: a.Service}, svc) == nil &&
			svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			url = "https://" + net.JoinHostPort(svc.Spec.ClusterIP, "443")
		}
	}
	a.pem, a.url, a.checked = cm.Data["ca.crt"], url, time.Now()
	if a.url == "" {
		a.pem = ""
	}
	return a.url, a.pem
}
