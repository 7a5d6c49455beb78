package main

import (
	"context"
	"crypto/x509"
	"net"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The archive makes its certificate once (kept in a Secret, published in a ConfigMap),
// names its Service's IPs in it, and makes it again when the Service's IP changes.
func TestArchiveCertificate(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	cs := kubernetes.NewForConfigOrDie(env.Config)
	o := &archiveOptions{namespace: ns, service: "flow-ci-archive", tlsSecret: "flow-ci-archive-tls", caConfig: "flow-ci-archive-ca"}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: o.service},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 443}}}}
	g.Expect(env.Client.Create(ctx, svc)).To(Succeed())
	src := tlsSource{cs: cs, o: o}
	first, err := src.config(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	again, err := src.config(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.Certificates[0].Certificate[0]).To(Equal(first.Certificates[0].Certificate[0]), "made once")

	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, o.caConfig, metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	pool := x509.NewCertPool()
	g.Expect(pool.AppendCertsFromPEM([]byte(cm.Data[CAKey]))).To(BeTrue())
	leaf, err := x509.ParseCertificate(first.Certificates[0].Certificate[0])
	g.Expect(err).NotTo(HaveOccurred())
	for _, name := range []string{svc.Spec.ClusterIP, "flow-ci-archive." + ns + ".svc", "localhost"} {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: time.Now()})
		g.Expect(err).NotTo(HaveOccurred(), "verified as %s with the published certificate", name)
	}
	g.Expect(cm.Data).NotTo(HaveKey("tls.key"))

	// The Service made anew, with another IP: a new certificate, published.
	g.Expect(env.Client.Delete(ctx, svc)).To(Succeed())
	// The API server may hand the freed IP out again, so the new one is asked for by hand.
	svc2 := recreateWithAnotherIP(ctx, g, svc)
	third, err := src.config(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(third.Certificates[0].Certificate[0]).NotTo(Equal(first.Certificates[0].Certificate[0]))
	cm, _ = cs.CoreV1().ConfigMaps(ns).Get(ctx, o.caConfig, metav1.GetOptions{})
	g.Expect(namesIPs([]byte(cm.Data[CAKey]), []net.IP{net.ParseIP(svc2.Spec.ClusterIP)})).To(BeTrue())
}

// recreateWithAnotherIP makes svc anew with a ClusterIP other than its old one,
// trying the next addresses of its /24 until one is free.
func recreateWithAnotherIP(ctx context.Context, g Gomega, svc *corev1.Service) *corev1.Service {
	old := net.ParseIP(svc.Spec.ClusterIP).To4()
	g.Expect(old).NotTo(BeNil())
	for i := 1; i < 200; i++ {
		ip := net.IPv4(old[0], old[1], old[2], byte(2+(int(old[3])-2+i)%250))
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name},
			Spec: corev1.ServiceSpec{ClusterIP: ip.String(), Ports: []corev1.ServicePort{{Port: 443}}}}
		if err := env.Client.Create(ctx, s); err == nil {
			g.Expect(s.Spec.ClusterIP).NotTo(Equal(svc.Spec.ClusterIP))
			return s
		}
	}
	g.Expect("no free ClusterIP").To(BeEmpty())
	return nil
}
