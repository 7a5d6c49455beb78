package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

func newApproveCmd(kube *kubeFlags, streams genericclioptions.IOStreams) *cobra.Command {
	var reviewed string
	c := &cobra.Command{
		Use:   "approve TRIGGER PR",
		Short: "Let a trigger build a fork's pull request, at its current head only",
		Long: `Approves the head the trigger last saw of pull request PR (status.pullRequests), so
the trigger builds that commit, without Secrets or ServiceAccount. A push to the pull
request after the approval needs a new one: an approval names one commit.

It writes the annotation approve.ci.flowci.dev/PR on the trigger, which needs the verb
approve on pipelinetriggers (the pipelinetrigger-approver role); the API server's audit
log records who approved which commit.`,
		Example: "  flowci approve app 12\n  flowci approve app 12 --head 3f2a9c1   # only if that is still its head",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			number, err := strconv.Atoi(args[1])
			if err != nil || number <= 0 {
				return fmt.Errorf("%q is not a pull request number", args[1])
			}
			k, err := kube.clients()
			if err != nil {
				return err
			}
			trig := &v1alpha1.PipelineTrigger{}
			if err := k.c.Get(cmd.Context(), client.ObjectKey{Namespace: k.namespace, Name: args[0]}, trig); err != nil {
				return err
			}
			head := ""
			for _, pr := range trig.Status.PullRequests {
				if int(pr.Number) == number {
					head = pr.Head
				}
			}
			if head == "" {
				return fmt.Errorf("trigger %s tracks no open pull request %d (kubectl get fpt %s -o yaml lists status.pullRequests)", args[0], number, args[0])
			}
			if reviewed != "" && (len(reviewed) < 7 || !strings.HasPrefix(head, reviewed)) {
				return fmt.Errorf("pull request %d's head is %s now, not the %s you reviewed: nothing approved", number, shorten.SHA(head), reviewed)
			}
			patch := client.MergeFrom(trig.DeepCopy())
			if trig.Annotations == nil {
				trig.Annotations = map[string]string{}
			}
			trig.Annotations[v1alpha1.AnnotationApprovePrefix+args[1]] = head
			if err := k.c.Patch(cmd.Context(), trig, patch); err != nil {
				return fmt.Errorf("approving pull request %d at %s: %w", number, shorten.SHA(head), err)
			}
			fmt.Fprintf(streams.Out, "approved pull request %d of trigger %s at %s\n", number, args[0], shorten.SHA(head))
			return nil
		},
	}
	c.Flags().StringVar(&reviewed, "head", "", "Approve only if the head is this commit (a prefix of at least 7): the one you reviewed.")
	return c
}
