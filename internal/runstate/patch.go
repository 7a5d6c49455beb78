package runstate

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// patchOp is one operation of a JSON patch (RFC 6902).
type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
}

// StatusPatch is the JSON patch (RFC 6902) that turns a run's status before into after,
// locked on resourceVersion: it replaces the resourceVersion with the one the pass
// read, so the API server refuses it with a conflict if the run changed since. Of the
// steps it replaces only the entries that changed: a handoff rewrites two of a run's
// steps, not all of them. It writes a whole status when there was none.
func StatusPatch(before, after *v1alpha1.PipelineRunStatus, resourceVersion string) ([]byte, error) {
	rv, err := json.Marshal(resourceVersion)
	if err != nil {
		return nil, err
	}
	ops := []patchOp{{Op: "replace", Path: "/metadata/resourceVersion", Value: rv}}
	old, err := fields(before)
	if err != nil {
		return nil, err
	}
	cur, err := fields(after)
	if err != nil {
		return nil, err
	}
	if len(old) == 0 {
		whole, err := json.Marshal(after)
		if err != nil {
			return nil, err
		}
		return json.Marshal(append(ops, patchOp{Op: "add", Path: "/status", Value: whole}))
	}
	for _, k := range sortedKeys(old) {
		if _, ok := cur[k]; !ok {
			ops = append(ops, patchOp{Op: "remove", Path: "/status/" + k})
		}
	}
	for _, k := range sortedKeys(cur) {
		was, ok := old[k]
		switch {
		case ok && bytes.Equal(was, cur[k]):
		case ok && k == "steps" && len(before.Steps) == len(after.Steps):
			stepOps, err := stepPatch(before.Steps, after.Steps)
			if err != nil {
				return nil, err
			}
			ops = append(ops, stepOps...)
		default:
			// add sets a member whether or not it exists.
			ops = append(ops, patchOp{Op: "add", Path: "/status/" + k, Value: cur[k]})
		}
	}
	return json.Marshal(ops)
}

// stepPatch replaces the step entries that differ, by index.
func stepPatch(before, after []v1alpha1.StepStatus) ([]patchOp, error) {
	var ops []patchOp
	for i := range after {
		a, err := json.Marshal(before[i])
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(after[i])
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(a, b) {
			ops = append(ops, patchOp{Op: "replace", Path: "/status/steps/" + strconv.Itoa(i), Value: b})
		}
	}
	return ops, nil
}

// fields are the status's members as JSON, as the API server stores them.
func fields(st *v1alpha1.PipelineRunStatus) (map[string]json.RawMessage, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	return out, json.Unmarshal(b, &out)
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
