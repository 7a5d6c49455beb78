package render

import corev1 "k8s.io/api/core/v1"

// DefaultUID is the fixed non-root uid, gid and fsGroup of clone and step
// pods. One fixed id means every pod of a run can read and write what the
// others left in the workspace.
const DefaultUID = 65532

// podSecurityContext satisfies Pod Security "restricted" at the pod level.
// fsGroup makes the freshly provisioned volume writable for DefaultUID;
// OnRootMismatch skips the recursive chown on every step after the first,
// which would otherwise cost time proportional to the checkout.
func podSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:        new(true),
		RunAsUser:           new(int64(DefaultUID)),
		RunAsGroup:          new(int64(DefaultUID)),
		FSGroup:             new(int64(DefaultUID)),
		FSGroupChangePolicy: new(corev1.FSGroupChangeOnRootMismatch),
		SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// containerSecurityContext satisfies Pod Security "restricted" at the
// container level. readOnlyRoot is for containers whose image we own.
func containerSecurityContext(readOnlyRoot bool) *corev1.SecurityContext {
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: new(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		RunAsNonRoot:             new(true),
	}
	if readOnlyRoot {
		sc.ReadOnlyRootFilesystem = new(true)
	}
	return sc
}
