package controllers

import (
	"bytes"
	"io"
	"os/exec"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// kustomize renders a directory of config/ with kubectl, as users apply it.
func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	out, err := exec.Command("kubectl", "kustomize", "../config/"+dir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize config/%s: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		o := &unstructured.Unstructured{}
		if err := dec.Decode(&o.Object); err == io.EOF {
			return objs
		} else if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
}

func find(objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	return nil
}

// TestMonitoredScrapeIsVerified: config/monitored makes Prometheus verify the
// operator's metrics certificate: cert-manager issues it for the metrics Service's name,
// the operator serves it, and the ServiceMonitor trusts its CA and checks that name
// instead of skipping verification while it sends its token.
func TestMonitoredScrapeIsVerified(t *testing.T) {
	objs := kustomize(t, "monitored")
	svc, cert, mon, deploy := find(objs, "Service"), find(objs, "Certificate"), find(objs, "ServiceMonitor"), find(objs, "Deployment")
	if svc == nil || cert == nil || mon == nil || deploy == nil {
		t.Fatal("config/monitored lacks the metrics Service, the Certificate, the ServiceMonitor or the operator")
	}
	svcName := svc.GetName() + "." + svc.GetNamespace() + ".svc"
	dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	if !slices.Contains(dns, svcName) {
		t.Errorf("the certificate names %v, not the metrics Service %s", dns, svcName)
	}
	secret, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	endpoints, _, _ := unstructured.NestedSlice(mon.Object, "spec", "endpoints")
	tls := endpoints[0].(map[string]any)["tlsConfig"].(map[string]any)
	ca, _, _ := unstructured.NestedString(tls, "ca", "secret", "name")
	if tls["insecureSkipVerify"] != false || tls["serverName"] != svcName || ca != secret {
		t.Errorf("the ServiceMonitor's tlsConfig %v does not verify %s against the CA in %s", tls, svcName, secret)
	}
	containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	volumes, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "volumes")
	mounted := false
	for _, v := range volumes {
		if name, _, _ := unstructured.NestedString(v.(map[string]any), "secret", "secretName"); name == secret {
			mounted = true
		}
	}
	if !slices.Contains(args, "--metrics-cert-dir=/tmp/k8s-metrics-server/metrics-certs") || !mounted {
		t.Errorf("the operator does not serve the certificate from %s: args %v, volumes %v", secret, args, volumes)
	}
	for _, o := range objs {
		if o.GetNamespace() != "" && o.GetNamespace() != "flow-ci-system" {
			t.Errorf("%s %s is in namespace %s", o.GetKind(), o.GetName(), o.GetNamespace())
		}
	}
}
