package render

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// Where a step's request or limit comes from; the more specific one wins a conflict.
const (
	fromOperator = iota
	fromPipeline
	fromStep
)

// StepResources are the requests and limits of step i of p.All(): the operator's
// defaults (--default-step-requests, --default-step-limits), overridden per resource by
// the pipeline's resources, then by the step's. When a request ends up above a limit,
// whichever of the two was set more specifically wins: a step asking for 4Gi raises the
// operator's default 2Gi limit to 4Gi, and a step limited to 64Mi lowers the default
// request to 64Mi. The result is never silently capped: CheckStepResources refuses a
// file over the operator's maximum.
func StepResources(p *pipeline.Pipeline, i int, cfg Config) corev1.ResourceRequirements {
	step := p.Step(i)
	return resolve([]corev1.ResourceList{cfg.StepResources.Requests, p.Resources.Requests, step.Resources.Requests},
		[]corev1.ResourceList{cfg.StepResources.Limits, p.Resources.Limits, step.Resources.Limits})
}

// ServiceResources are a service's requests and limits: the operator's step defaults
// overridden by the service's own, by the rule of StepResources. A pipeline's
// resources are its steps', not their services'.
func ServiceResources(s pipeline.Service, cfg Config) corev1.ResourceRequirements {
	return resolve([]corev1.ResourceList{cfg.StepResources.Requests, nil, s.Resources.Requests},
		[]corev1.ResourceList{cfg.StepResources.Limits, nil, s.Resources.Limits})
}

// StepPodResources are what the pod of step i asks for as a whole: its container's
// resources plus each service's (sidecars run for as long as the step does), per
// resource; a limit counts only when every container has one.
func StepPodResources(p *pipeline.Pipeline, i int, cfg Config) corev1.ResourceRequirements {
	out := StepResources(p, i, cfg)
	for _, s := range p.Step(i).Services {
		r := ServiceResources(s, cfg)
		out.Requests = addLists(out.Requests, r.Requests, false)
		out.Limits = addLists(out.Limits, r.Limits, true)
	}
	return out
}

// addLists adds b to a per resource; with both, a resource missing from either list is
// dropped (an unlimited container makes its pod unlimited).
func addLists(a, b corev1.ResourceList, both bool) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name, q := range a {
		if _, ok := b[name]; both && !ok {
			continue
		}
		out[name] = q.DeepCopy()
	}
	for name, q := range b {
		cur, ok := out[name]
		if _, inA := a[name]; both && !inA {
			continue
		}
		if ok {
			cur.Add(q)
			out[name] = cur
		} else {
			out[name] = q.DeepCopy()
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// resolve merges the levels (operator, pipeline, step) of requests and of limits. When
// a request ends up above a limit, whichever of the two was set more specifically wins.
func resolve(reqLevels, limLevels []corev1.ResourceList) corev1.ResourceRequirements {
	req, reqFrom := merge(reqLevels...)
	lim, limFrom := merge(limLevels...)
	for name, r := range req {
		l, ok := lim[name]
		if !ok || r.Cmp(l) <= 0 {
			continue
		}
		if reqFrom[name] >= limFrom[name] {
			lim[name] = r.DeepCopy()
		} else {
			req[name] = l.DeepCopy()
		}
	}
	out := corev1.ResourceRequirements{}
	if len(req) > 0 {
		out.Requests = req
	}
	if len(lim) > 0 {
		out.Limits = lim
	}
	return out
}

func merge(levels ...corev1.ResourceList) (corev1.ResourceList, map[corev1.ResourceName]int) {
	out, from := corev1.ResourceList{}, map[corev1.ResourceName]int{}
	for level, l := range levels {
		for name, q := range l {
			out[name], from[name] = q.DeepCopy(), level
		}
	}
	return out, from
}

// CheckStepResources refuses a pipeline whose steps would ask for more than the
// operator's maximum (--max-step-resources), naming the step, the resource and the line.
func CheckStepResources(p *pipeline.Pipeline, cfg Config) error {
	if len(cfg.MaxStepResources) == 0 {
		return nil
	}
	for i := range len(p.Steps) + len(p.Finally) {
		res := StepPodResources(p, i, cfg)
		for _, kind := range []struct {
			name string
			list corev1.ResourceList
		}{{"request", res.Requests}, {"limit", res.Limits}} {
			for _, name := range sortedNames(kind.list) {
				q, most := kind.list[name], cfg.MaxStepResources[name]
				if most.IsZero() || q.Cmp(most) <= 0 {
					continue
				}
				where := pipeline.Problem{Path: p.Path(i) + ".resources", Line: p.Step(i).Resources.Line}
				if where.Line == 0 {
					where = pipeline.Problem{Path: "resources", Line: p.Resources.Line}
				}
				with := ""
				if len(p.Step(i).Services) > 0 {
					with = " with its services"
				}
				where.Msg = fmt.Sprintf("the %s %s %s of step %q%s is above the operator's maximum of %s (--max-step-resources)",
					name, kind.name, q.String(), p.Step(i).Name, with, most.String())
				return fmt.Errorf("%s", where.String())
			}
		}
	}
	return nil
}

// NeedsOneNode says whether every pod of the run must run on one node: a workspace
// that only ReadWriteMany does not bind mounts on one node at a time.
func NeedsOneNode(run *v1alpha1.PipelineRun) bool {
	return !slices.Contains(run.Spec.Workspace.AccessModes, corev1.ReadWriteMany)
}

// cloneResources are the clone container's: its own, with requests raised to reserve,
// so that the node the clone lands on (and every step is pinned to) has room for the
// steps that run at once; limits are raised to stay no lower than the requests.
func cloneResources(cfg Config, reserve corev1.ResourceList) corev1.ResourceRequirements {
	out := *cfg.CloneResources.DeepCopy()
	for name, q := range reserve {
		if cur, ok := out.Requests[name]; ok && cur.Cmp(q) >= 0 {
			continue
		}
		if out.Requests == nil {
			out.Requests = corev1.ResourceList{}
		}
		out.Requests[name] = q.DeepCopy()
		if l, ok := out.Limits[name]; ok && l.Cmp(q) < 0 {
			out.Limits[name] = q.DeepCopy()
		}
	}
	return out
}

func sortedNames(l corev1.ResourceList) []corev1.ResourceName {
	out := make([]corev1.ResourceName, 0, len(l))
	for name := range l {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
