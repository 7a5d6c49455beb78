package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/runstate"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

func newResumeCmd(kube *kubeFlags, streams genericclioptions.IOStreams) *cobra.Command {
	var from string
	var follow bool
	c := &cobra.Command{
		Use:   "resume RUN",
		Short: "Continue a failed run in its kept workspace: only what did not succeed runs again",
		Long: `Creates a run that resumes RUN (spec.resumeFrom): the same commit, pipeline file,
Secrets and ServiceAccount, in the workspace RUN kept (it needs
spec.workspace.retainOnFailure). The steps that succeeded in RUN are reused (shown
Skipped, reason Reused); the others run, with what depends on them, and the finally
steps. --from STEP runs STEP and every step that depends on it again. Needs the right to
create pods in the namespace. When the workspace is gone, use flowci rerun.

A run a PipelineTrigger started is resumed by that trigger (a request on it,
ci.flowci.dev/rerun): the new run is the trigger's own, takes its Secrets and
ServiceAccount from the trigger's template, like the trigger's rerun, and reports its
commit status where RUN did.`,
		Example: "  flowci resume build-7xk2p -f\n  flowci resume build-7xk2p --from test",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, old, err := kube.namedRun(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			spec, err := resumeSpec(old, from)
			if err != nil {
				return err
			}
			name := ""
			if trigger := triggerOf(old); trigger != "" {
				// Read back as the trigger reads it, so both name the run alike.
				req, err := triggerstate.ParseRerun(triggerstate.RerunRequest{ID: requestID(), Run: old.Name, Resume: true, From: from}.String())
				if err != nil {
					return err
				}
				if name, err = rerunThroughTrigger(cmd.Context(), k, old, trigger, req); err != nil {
					return err
				}
			} else {
				run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: old.Namespace, GenerateName: runPrefix(spec.RepoURL)}, Spec: *spec}
				if err := k.c.Create(cmd.Context(), run); err != nil {
					return err
				}
				name = run.Name
			}
			fmt.Fprintf(streams.ErrOut, "pipelinerun/%s created (resumes %s)\n", name, old.Name)
			return created(cmd.Context(), k, streams, name, follow)
		},
	}
	c.Flags().StringVar(&from, "from", "", "Run this step and every step that depends on it again, even those that succeeded.")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "Follow the new run's logs and exit with its result.")
	return c
}

// resumeSpec is the spec of a run that resumes old: old's, pinned to its commit, with
// spec.resumeFrom. The operator checks the rest (runstate.ResumeRefusal).
func resumeSpec(old *v1alpha1.PipelineRun, from string) (*v1alpha1.PipelineRunSpec, error) {
	if why := runstate.NotResumable(old); why != "" {
		return nil, errors.New(why)
	}
	spec := old.Spec.DeepCopy()
	spec.Cancel, spec.Abort = false, false
	spec.Revision = old.Status.Commit
	spec.ResumeFrom = &v1alpha1.ResumeSource{Run: old.Name, From: from, UID: string(old.UID)}
	return spec, nil
}
