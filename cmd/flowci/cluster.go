package main

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/shorten"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

func newStartCmd(kube *kubeFlags, streams genericclioptions.IOStreams) *cobra.Command {
	var follow bool
	var branch, revision, pipelinePath, secret string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "start",
		Short: "Create a PipelineRun for this working copy; -f follows it and exits with its result",
		Long: `Creates a PipelineRun of this working copy: the repository is origin's URL, the branch
HEAD's (or --branch). It warns when HEAD is not pushed, since the cluster builds what the
remote has. With -f it follows every step's log and exits with the run's result.`,
		Example: "  flowci start -f\n  flowci start --branch release/1 --revision 3f9a1c2...",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			wc, err := workingCopy(".")
			if err != nil {
				return err
			}
			if wc.remote == "" {
				return fmt.Errorf("the working copy has no origin remote: the cluster needs a URL to clone")
			}
			if wc.remoteHadCredentials {
				fmt.Fprintf(streams.ErrOut, "warning: origin's URL carries credentials; the run uses %s without them (give a Secret with --git-secret)\n", wc.remote)
			}
			if branch == "" {
				branch = wc.branch
			}
			if branch == "" {
				return fmt.Errorf("HEAD is detached: name the branch with --branch")
			}
			if revision == "" && branch == wc.branch && !wc.pushed {
				fmt.Fprintf(streams.ErrOut, "warning: HEAD %s is not origin/%s: the run builds what the remote has; push first\n", shorten.SHA(wc.head), branch)
			}
			k, err := kube.clients()
			if err != nil {
				return err
			}
			run := &v1alpha1.PipelineRun{
				ObjectMeta: metav1.ObjectMeta{Namespace: k.namespace, GenerateName: runPrefix(wc.remote)},
				Spec:       v1alpha1.PipelineRunSpec{RepoURL: wc.remote, Branch: branch, Revision: revision, PipelinePath: pipelinePath},
			}
			if secret != "" {
				run.Spec.GitSecretRef = &v1alpha1.SecretReference{Name: secret}
			}
			if timeout > 0 {
				run.Spec.Timeout = &metav1.Duration{Duration: timeout}
			}
			if err := k.c.Create(cmd.Context(), run); err != nil {
				return err
			}
			fmt.Fprintf(streams.ErrOut, "pipelinerun/%s created (%s @ %s)\n", run.Name, wc.remote, branch)
			return created(cmd.Context(), k, streams, run.Name, follow)
		},
	}
	f := c.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "Follow the run's logs until it ends, and exit with its result.")
	f.StringVar(&branch, "branch", "", "Branch to build (default: HEAD's).")
	f.StringVar(&revision, "revision", "", "Full commit SHA to build instead of the branch head.")
	f.StringVar(&pipelinePath, "pipeline-path", "", "Pipeline file in the repository (default build/flow-ci.yaml).")
	f.StringVar(&secret, "git-secret", "", "Secret with git credentials (you must be allowed to get it).")
	f.DurationVar(&timeout, "timeout", 0, "Bound on the whole run (default 1h).")
	return c
}

// created ends start and rerun: it prints the new run's name, or follows it (with a
// progress line on a terminal) and returns its result.
func created(ctx context.Context, k *clients, streams genericclioptions.IOStreams, name string, follow bool) error {
	if !follow {
		fmt.Fprintln(streams.Out, name)
		return nil
	}
	end, err := followLogs(ctx, k, newScreen(streams.Out), name, followOptions{follow: true, progress: true, notes: streams.ErrOut})
	if err != nil {
		return err
	}
	return runResult(end)
}

// runPrefix is a generateName from the repository's name: "app-".
func runPrefix(repoURL string) string {
	base := strings.TrimSuffix(path.Base(strings.TrimRight(strings.ReplaceAll(repoURL, ":", "/"), "/")), ".git")
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 40 {
		name = strings.Trim(name[:40], "-")
	}
	if name == "" {
		name = "run"
	}
	return name + "-"
}

func newCancelCmd(kube *kubeFlags, streams genericclioptions.IOStreams) *cobra.Command {
	var abort bool
	c := &cobra.Command{
		Use:     "cancel RUN",
		Short:   "Cancel a run: its running steps stop, its finally steps run (--abort: stop everything)",
		Example: "  flowci cancel build-7xk2p",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, run, err := kube.namedRun(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			patch := client.MergeFrom(run.DeepCopy())
			run.Spec.Cancel = true
			run.Spec.Abort = run.Spec.Abort || abort
			if err := k.c.Patch(cmd.Context(), run, patch); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "pipelinerun/%s cancelled\n", run.Name)
			return nil
		},
	}
	c.Flags().BoolVar(&abort, "abort", false, "Stop everything at once, finally steps included.")
	return c
}

func newWaitCmd(kube *kubeFlags, streams genericclioptions.IOStreams) *cobra.Command {
	var timeout time.Duration
	c := &cobra.Command{
		Use:     "wait RUN",
		Short:   "Wait until a run ends and exit with its result",
		Example: "  flowci wait build-7xk2p --timeout 30m",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := kube.clients()
			if err != nil {
				return err
			}
			scr, since := newScreen(streams.Out), time.Now()
			deadline := time.Time{}
			if timeout > 0 {
				deadline = since.Add(timeout)
			}
			last := ""
			for {
				run, err := k.getRun(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				scr.setProgress(run, since)
				state := fmt.Sprintf("%s %s %s", run.Status.Phase, run.Status.Progress, run.Status.CurrentStep)
				if !scr.tty && state != last {
					scr.line(strings.TrimSpace(fmt.Sprintf("%s: %s", run.Name, state)))
					last = state
				}
				if run.Status.Phase.IsFinished() {
					scr.done()
					scr.header(run.Name, fmt.Sprintf("%s %s", run.Status.Phase, conditionMessage(run)))
					return runResult(run)
				}
				if !deadline.IsZero() && time.Now().After(deadline) {
					scr.done()
					return fmt.Errorf("run %s is still %s after %s", run.Name, run.Status.Phase, timeout)
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(pollEvery):
				}
			}
		},
	}
	c.Flags().DurationVar(&timeout, "timeout", 0, "Give up after this long (0: wait as long as the run takes).")
	return c
}

func newRerunCmd(kube *kubeFlags, streams genericclioptions.IOStreams) *cobra.Command {
	var latest, follow bool
	c := &cobra.Command{
		Use:   "rerun RUN",
		Short: "Run a run again: the same commit, or with --latest the branch's head now",
		Long: `Runs RUN again. A run a PipelineTrigger started is run again by that trigger (a
request on it, ci.flowci.dev/rerun), so the new run is the trigger's own and reports its
commit status where RUN did: a red check can turn green. This needs the right to create
runs, and on a trigger that names a Secret or ServiceAccount, the rights its edit needs.
Any other run is run again as a new run of your own.`,
		Example: "  flowci rerun build-7xk2p -f\n  flowci rerun build-7xk2p --latest",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, old, err := kube.namedRun(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var name string
			if trigger := triggerOf(old); trigger != "" {
				req := triggerstate.RerunRequest{ID: requestID(), Run: old.Name, Latest: latest}
				name, err = rerunThroughTrigger(cmd.Context(), k, old, trigger, req)
			} else {
				name, err = rerunAsNew(cmd.Context(), k, old, latest)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.ErrOut, "pipelinerun/%s created (rerun of %s)\n", name, old.Name)
			return created(cmd.Context(), k, streams, name, follow)
		},
	}
	c.Flags().BoolVar(&latest, "latest", false, "Build the branch's head now instead of the same commit.")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "Follow the new run's logs and exit with its result.")
	return c
}

// rerunAsNew creates a run of the user's own with old's spec.
func rerunAsNew(ctx context.Context, k *clients, old *v1alpha1.PipelineRun, latest bool) (string, error) {
	spec := old.Spec.DeepCopy()
	spec.Cancel, spec.Abort = false, false
	spec.ResumeFrom = nil // a rerun runs every step, in a workspace of its own
	if latest {
		spec.Revision = ""
	} else if old.Status.Commit != "" {
		spec.Revision = old.Status.Commit
	}
	if spec.Revision == "" && !latest {
		return "", fmt.Errorf("run %s has no commit yet: use --latest", old.Name)
	}
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: old.Namespace, GenerateName: runPrefix(spec.RepoURL)}, Spec: *spec}
	if err := k.c.Create(ctx, run); err != nil {
		return "", err
	}
	return run.Name, nil
}

// rerunWait bounds how long a rerun request waits for its trigger to act.
const rerunWait = time.Minute

// triggerOf is the name of the PipelineTrigger that controls run, or "".
func triggerOf(run *v1alpha1.PipelineRun) string {
	if ref := metav1.GetControllerOf(run); ref != nil && ref.Kind == "PipelineTrigger" && ref.APIVersion == v1alpha1.GroupVersion.String() {
		return ref.Name
	}
	return ""
}

// requestID makes each rerun request new.
func requestID() string { return strconv.FormatInt(time.Now().UnixNano(), 36) }

// rerunThroughTrigger asks old's trigger for req (run old again, or resume it) and waits
// until the trigger created the run (its name is known in advance: render.RerunName,
// render.ResumeName) or refused.
func rerunThroughTrigger(ctx context.Context, k *clients, old *v1alpha1.PipelineRun, trigger string, req triggerstate.RerunRequest) (string, error) {
	trig := &v1alpha1.PipelineTrigger{}
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: old.Namespace, Name: trigger}, trig); err != nil {
		return "", fmt.Errorf("reading run %s's trigger: %w", old.Name, err)
	}
	patch := client.MergeFrom(trig.DeepCopy())
	if trig.Annotations == nil {
		trig.Annotations = map[string]string{}
	}
	trig.Annotations[v1alpha1.AnnotationRerun] = req.String()
	if err := k.c.Patch(ctx, trig, patch); err != nil {
		return "", fmt.Errorf("asking trigger %s for %q: %w", trigger, req.String(), err)
	}
	name := render.RerunName(trig, old, req.ID, req.Latest)
	if req.Resume {
		name = render.ResumeName(trig, old, req.ID, req.From)
	}
	deadline := time.Now().Add(rerunWait)
	for {
		run := &v1alpha1.PipelineRun{}
		err := k.c.Get(ctx, client.ObjectKey{Namespace: old.Namespace, Name: name}, run)
		if err == nil {
			return name, nil
		}
		if !apierrors.IsNotFound(err) {
			return "", err
		}
		cur := &v1alpha1.PipelineTrigger{}
		if err := k.c.Get(ctx, client.ObjectKeyFromObject(trig), cur); err == nil && cur.Status.LastHandledRerun == req.String() {
			return "", fmt.Errorf("trigger %s refused the request for %s: kubectl describe fpt %s -n %s says why", trigger, old.Name, trigger, old.Namespace)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("trigger %s did not act on the request within %s (is the operator running, or was the request replaced by another?)", trigger, rerunWait)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}
