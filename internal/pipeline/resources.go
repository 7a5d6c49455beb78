package pipeline

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"gopkg.in/yaml.v3"
)

// resources converts {cpu, memory, limits: {cpu, memory}}: requests, and limits that
// are no lower than them.
func (v *validator) resources(n *yaml.Node, rp string) Resources {
	f, ok := v.fields(n, rp, []string{"cpu", "memory", "limits"})
	if !ok {
		return Resources{}
	}
	r := Resources{Line: n.Line}
	r.Requests = v.quantities(f, rp)
	if ln := f["limits"]; ln != nil {
		lf, ok := v.fields(ln, rp+".limits", []string{"cpu", "memory"})
		if ok {
			r.Limits = v.quantities(lf, rp+".limits")
		}
	}
	for name, req := range r.Requests {
		if lim, ok := r.Limits[name]; ok && lim.Cmp(req) < 0 {
			v.add(f[string(name)], rp+"."+string(name), "request %s is above its limit %s", req.String(), lim.String())
		}
	}
	return r
}

func (v *validator) quantities(f map[string]*yaml.Node, rp string) corev1.ResourceList {
	var out corev1.ResourceList
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		qn := f[string(name)]
		if qn == nil {
			continue
		}
		qp := rp + "." + string(name)
		s, ok := v.text(qn, qp)
		if !ok {
			continue
		}
		q, err := resource.ParseQuantity(s)
		if err != nil || q.Sign() <= 0 {
			v.add(qn, qp, "must be a positive quantity such as 500m or 1Gi, got %s", quote(s))
			continue
		}
		if out == nil {
			out = corev1.ResourceList{}
		}
		out[name] = q
	}
	return out
}
