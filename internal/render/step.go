package render

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// MaxScriptBytes bounds a step's rendered script. Quoting and the echo of each command
// can grow a file's commands six-fold; a Job the API server would refuse (etcd's
// object limit is 1.5 MiB) must fail the run at render time with this reason.
const MaxScriptBytes = 256 << 10

// RenderStepJob renders the Job of step index of p.All() (its steps, then its finally
// steps). nodeName, when not empty, pins the pod to the node the clone ran on, so a
// ReadWriteOnce workspace can be mounted on clusters with more than one node.
//
// It fails if index is out of range, no image is configured for the step, or
// the step's working directory leaves the checkout.
func RenderStepJob(run *v1alpha1.PipelineRun, p *pipeline.Pipeline, index int, nodeName string, cfg Config) (*batchv1.Job, error) {
	if p == nil || index < 0 || index >= len(p.Steps)+len(p.Finally) {
		return nil, fmt.Errorf("render step %d: no such step in the pipeline", index)
	}
	step := *p.Step(index)
	image := p.StepImage(index, cfg.DefaultStepImage)
	if image == "" {
		return nil, fmt.Errorf("render step %q: no image: the step and pipeline set none and no default step image is configured", step.Name)
	}
	workDir, err := stepWorkingDir(step.WorkingDir)
	if err != nil {
		return nil, fmt.Errorf("render step %q: %w", step.Name, err)
	}
	script := escapeExpansion(StepScript(step.Commands))
	if len(script) > MaxScriptBytes {
		return nil, fmt.Errorf("render step %q: its script is %d bytes once quoted and echoed, more than %d", step.Name, len(script), MaxScriptBytes)
	}

	podSpec := corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		// Service links would add a variable per Service in the namespace.
		EnableServiceLinks: new(false),
		SecurityContext:    podSecurityContext(),
		Affinity:           pinToNode(nodeName),
		// A pinned step outranks the run's hold (hold.go), which keeps its node's room
		// from pods of the default priority.
		PriorityClassName: stepPriorityClass(nodeName, cfg),
		Containers: []corev1.Container{{
			Name:                     "step",
			Image:                    image,
			ImagePullPolicy:          cfg.ImagePullPolicy,
			Command:                  []string{"/bin/sh", "-c", script},
			WorkingDir:               workDir,
			Env:                      forKubelet(StepEnv(run, p, step)),
			VolumeMounts:             []corev1.VolumeMount{workspaceMount()},
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			SecurityContext:          containerSecurityContext(false),
			Resources:                StepResources(p, index, cfg),
		}},
		Volumes: []corev1.Volume{workspaceVolumeSource(run)},
	}
	if step.SavesCaches {
		cacheSaveContainer(&podSpec, run, p, cfg)
	} else {
		if err := withSecrets(&podSpec, run, step, cfg); err != nil {
			return nil, fmt.Errorf("render step %q: %w", step.Name, err)
		}
		withArtifacts(&podSpec, step, cfg)
		withCacheEnv(&podSpec.Containers[0], p)
		withServices(&podSpec, step, cfg)
	}
	withServiceAccount(&podSpec, run, step)

	labels := stepLabels(run, index, step.Name)
	job := &batchv1.Job{
		ObjectMeta: objectMeta(run, StepJobName(run, index, step.Name), labels),
		Spec: batchv1.JobSpec{
			BackoffLimit: new(int32(step.Retries)),
			// Evictions and preemptions are not the step's fault: retry them
			// without using up its retries. Needs restartPolicy Never.
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action: batchv1.PodFailurePolicyActionIgnore,
				OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{
					Type:   corev1.DisruptionTarget,
					Status: corev1.ConditionTrue,
				}},
			}}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: objectMetaForPod(run, labels),
				Spec:       podSpec,
			},
		},
	}
	if step.Timeout > 0 {
		secs := int64((step.Timeout + time.Second - 1) / time.Second)
		job.Spec.ActiveDeadlineSeconds = &secs
	}
	return job, nil
}

// withServiceAccount gives a step API credentials only when the run asks for them; the
// operator's own saving step never.
func withServiceAccount(spec *corev1.PodSpec, run *v1alpha1.PipelineRun, step pipeline.Step) {
	if sa := run.Spec.ServiceAccountName; sa != "" && !step.SavesCaches {
		spec.ServiceAccountName = sa
	} else {
		spec.AutomountServiceAccountToken = new(false)
	}
}

// stepWorkingDir resolves the step's directory under SourceDir. The parser
// already keeps it inside the checkout; checking again costs nothing.
func stepWorkingDir(rel string) (string, error) {
	dir := path.Join(SourceDir, rel)
	if dir != SourceDir && !strings.HasPrefix(dir, SourceDir+"/") {
		return "", fmt.Errorf("working directory %q is outside the checkout", rel)
	}
	return dir, nil
}

// StepScript is the shell script of a step, shared with the CLI's local runs: each
// command is printed with a "+ " prefix, then run as written, in one shell so that cd and variables
// carry over; set -e ends the script at the first command that fails.
func StepScript(commands []string) string {
	var b strings.Builder
	b.WriteString("set -e\n")
	for _, c := range commands {
		// printf, unlike echo, prints backslashes and a leading "-n"
		// literally. The trailing newline of a YAML block scalar is not
		// worth a blank line in the log.
		fmt.Fprintf(&b, "printf '+ %%s\\n' %s\n", shellQuote(strings.TrimRight(c, "\n")))
		b.WriteString(c)
		// The blank line ends a command whose last line ends in a
		// backslash, which would otherwise swallow the next printf.
		b.WriteString("\n\n")
	}
	return b.String()
}

// shellQuote single-quotes s for sh. Inside single quotes nothing is
// special, newlines included; each quote in s closes the quoting, adds an
// escaped quote and reopens it.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// StepEnv returns the step's environment in a fixed order, for Jobs and the CLI's local
// runs alike: the built-ins, then the pipeline's variables overlaid with the step's, sorted by name.
// A user value for CI or HOME replaces the built-in in place; FLOWCI_*
// names are the operator's alone and are dropped. Values are as the step sees them:
// a Job's container spec needs them escaped for the kubelet's $(VAR) expansion
// (forKubelet), a local shell does not.
func StepEnv(run *v1alpha1.PipelineRun, p *pipeline.Pipeline, step pipeline.Step) []corev1.EnvVar {
	user := make(map[string]string, len(p.Env)+len(step.Env))
	for _, v := range p.Env {
		user[v.Name] = v.Value
	}
	for _, v := range step.Env {
		user[v.Name] = v.Value
	}

	out := []corev1.EnvVar{
		{Name: "CI", Value: "true"},
		{Name: "HOME", Value: HomeDir},
		{Name: "FLOWCI_RUN", Value: run.Name},
		{Name: "FLOWCI_REPO", Value: run.Spec.RepoURL},
		{Name: "FLOWCI_BRANCH", Value: run.Status.Branch},
		{Name: "FLOWCI_COMMIT", Value: run.Status.Commit},
		{Name: "FLOWCI_STEP", Value: step.Name},
	}
	if len(step.Secrets) > 0 {
		out = append(out, corev1.EnvVar{Name: "FLOWCI_SECRETS", Value: pipeline.SecretsDir})
	}
	for i, e := range out {
		if v, ok := user[e.Name]; ok && !strings.HasPrefix(e.Name, pipeline.ReservedEnvPrefix) {
			out[i].Value = v
		}
	}
	names := make([]string, 0, len(user))
	for name := range user {
		if !strings.HasPrefix(name, pipeline.ReservedEnvPrefix) && !slices.ContainsFunc(out, func(e corev1.EnvVar) bool { return e.Name == name }) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		out = append(out, corev1.EnvVar{Name: name, Value: user[name]})
	}
	return out
}

// forKubelet escapes each value for the kubelet, which expands $(VAR) in a container's
// env values: "$" becomes "$$", so the container sees exactly what StepEnv returned.
func forKubelet(vars []corev1.EnvVar) []corev1.EnvVar {
	for i := range vars {
		vars[i].Value = escapeExpansion(vars[i].Value)
	}
	return vars
}

// pinToNode requires the node named nodeName. It matches the node's name
// field, not the kubernetes.io/hostname label, which can differ from it.
func pinToNode(nodeName string) *corev1.Affinity {
	if nodeName == "" {
		return nil
	}
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchFields: []corev1.NodeSelectorRequirement{{
					Key:      "metadata.name",
					Operator: corev1.NodeSelectorOpIn,
					Values:   []string{nodeName},
				}},
			}},
		},
	}}
}

// PinnedNode returns the node a rendered step Job is pinned to, or "".
func PinnedNode(job *batchv1.Job) string {
	a := job.Spec.Template.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, f := range term.MatchFields {
			if f.Key == "metadata.name" && len(f.Values) == 1 {
				return f.Values[0]
			}
		}
	}
	return ""
}
