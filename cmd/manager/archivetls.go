package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// CAKey is the key of the archive's CA ConfigMap that holds the certificate readers
// trust; the CLI and the web view read it through the API server.
const CAKey = "ca.crt"

// tlsSource gives the archive's serving certificate: the files of --tls-cert-file, or
// one the archive made once and keeps in a Secret of its namespace, so that replicas
// and restarts serve the same one. Its certificate is published in a ConfigMap that
// every authenticated user may read (config/archive), as kube-root-ca.crt is, so that
// clients verify the archive without a certificate authority to set up.
type tlsSource struct {
	cs kubernetes.Interface
	o  *archiveOptions
}

func (t tlsSource) config(ctx context.Context) (*tls.Config, error) {
	if t.o.certFile != "" {
		cert, err := tls.LoadX509KeyPair(t.o.certFile, t.o.keyFile)
		if err != nil {
			return nil, fmt.Errorf("loading the serving certificate: %w", err)
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
	}
	certPEM, keyPEM, err := t.keptCertificate(ctx)
	if err != nil {
		return nil, err
	}
	if err := t.publish(ctx, certPEM); err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the certificate in %s: %w", t.o.tlsSecret, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// keptCertificate reads the certificate from its Secret, making it the first time, and
// again when it does not name the Service's current IPs (a Service made anew).
func (t tlsSource) keptCertificate(ctx context.Context) (certPEM, keyPEM []byte, err error) {
	secrets := t.cs.CoreV1().Secrets(t.o.namespace)
	ips := t.serviceIPs(ctx)
	s, err := secrets.Get(ctx, t.o.tlsSecret, metav1.GetOptions{})
	switch {
	case err == nil && namesIPs(s.Data[corev1.TLSCertKey], ips):
		return s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], nil
	case err != nil && !apierrors.IsNotFound(err):
		return nil, nil, fmt.Errorf("reading %s: %w", t.o.tlsSecret, err)
	}
	exists := err == nil
	if certPEM, keyPEM, err = selfSigned(t.o.service, t.o.namespace, ips, time.Now()); err != nil {
		return nil, nil, err
	}
	data := map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}
	if exists {
		s.Data = data
		if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			return nil, nil, fmt.Errorf("keeping the certificate in %s: %w", t.o.tlsSecret, err)
		}
		return certPEM, keyPEM, nil
	}
	s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: t.o.tlsSecret, Namespace: t.o.namespace},
		Type: corev1.SecretTypeTLS, Data: data}
	if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		return t.keptCertificate(ctx) // another replica made it first
	} else if err != nil {
		return nil, nil, fmt.Errorf("keeping the certificate in %s: %w", t.o.tlsSecret, err)
	}
	return certPEM, keyPEM, nil
}

// namesIPs says whether the PEM certificate names every one of ips.
func namesIPs(certPEM []byte, ips []net.IP) bool {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// publish writes the certificate into the CA ConfigMap, if it is not there yet.
func (t tlsSource) publish(ctx context.Context, certPEM []byte) error {
	cms := t.cs.CoreV1().ConfigMaps(t.o.namespace)
	cm, err := cms.Get(ctx, t.o.caConfig, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: t.o.caConfig, Namespace: t.o.namespace},
			Data: map[string]string{CAKey: string(certPEM)}}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("publishing the certificate in %s: %w", t.o.caConfig, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading %s: %w", t.o.caConfig, err)
	case cm.Data[CAKey] == string(certPEM):
		return nil
	}
	cm.Data = map[string]string{CAKey: string(certPEM)}
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("publishing the certificate in %s: %w", t.o.caConfig, err)
	}
	return nil
}

// serviceIPs are the archive Service's cluster IPs, for clients that reach it without
// cluster DNS; none when the Service cannot be read (the names still work).
func (t tlsSource) serviceIPs(ctx context.Context) []net.IP {
	svc, err := t.cs.CoreV1().Services(t.o.namespace).Get(ctx, t.o.service, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, s := range svc.Spec.ClusterIPs {
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		}
	}
	return ips
}

// selfSigned makes a certificate for the archive's Service names and IPs, valid for ten
// years.
func selfSigned(service, namespace string, ips []net.IP, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	svc := service + "." + namespace + ".svc"
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: svc},
		DNSNames:    []string{service, service + "." + namespace, svc, svc + ".cluster.local", "localhost"},
		IPAddresses: append(ips, net.IPv6loopback, net.IPv4(127, 0, 0, 1)),
		NotBefore:   now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}
