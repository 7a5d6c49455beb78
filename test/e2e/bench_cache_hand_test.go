//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// p6ByHand runs the steps as three Jobs one after another on one volume, the first
// fetching the source, each created as soon as the one before completed, and returns the
// time from the volume's creation to the last Job's completion. It is cold: by hand,
// nothing is cached.
func p6ByHand(b *testing.B, proxy string) time.Duration {
	ctx := context.Background()
	ns := benchNamespace(b)
	start := time.Now()
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "w"}, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	if err := k8s.Create(ctx, pvc); err != nil {
		b.Fatal(err)
	}
	var end time.Time
	for i, cmds := range p6Steps {
		script := "cd /w/src && " + cmds[0]
		if i == 0 {
			script = "mkdir -p /w/src /w/home && wget -qO- " + proxy + "/src.tar | tar -x -C /w/src && " + script
		}
		job := p6Job(ns, fmt.Sprintf("step%d", i), script, proxy)
		if err := k8s.Create(ctx, job); err != nil {
			b.Fatal(err)
		}
		end = p6JobDone(b, job)
	}
	return end.Sub(start)
}

func p6Job(ns, name, script, proxy string) *batchv1.Job {
	uid := int64(65532)
	env := []corev1.EnvVar{{Name: "HOME", Value: "/w/home"}}
	for k, v := range p6Env(proxy) {
		env = append(env, corev1.EnvVar{Name: k, Value: v})
	}
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: batchv1.JobSpec{BackoffLimit: new(int32(0)),
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, AutomountServiceAccountToken: new(false),
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: new(true), RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Volumes: []corev1.Volume{{Name: "w", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "w"}}}},
			Containers: []corev1.Container{{Name: "s", Image: "localhost/go:local", ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"/bin/sh", "-c", script}, Env: env, WorkingDir: "/w",
				VolumeMounts: []corev1.VolumeMount{{Name: "w", MountPath: "/w"}},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: new(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
		}}}}
}

// p6JobDone waits for the Job to complete and returns when it did.
func p6JobDone(b *testing.B, job *batchv1.Job) time.Time {
	deadline := time.Now().Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		cur := &batchv1.Job{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(job), cur); err != nil {
			b.Fatal(err)
		}
		for _, c := range cur.Status.Conditions {
			switch {
			case c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue:
				return c.LastTransitionTime.Time
			case c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue:
				out, _ := kubectl("-n", job.Namespace, "logs", "job/"+job.Name)
				b.Fatalf("Job %s failed: %s", job.Name, out)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Fatalf("Job %s did not complete", job.Name)
	return time.Time{}
}
