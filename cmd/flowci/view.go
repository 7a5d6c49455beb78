package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// printObject prints obj as yaml or json; ok is false for any other format (the table).
func printObject(w io.Writer, format string, obj any) (bool, error) {
	switch format {
	case "yaml":
		b, err := yaml.Marshal(obj)
		if err != nil {
			return true, err
		}
		_, err = w.Write(b)
		return true, err
	case "json":
		b, err := json.MarshalIndent(obj, "", "  ")
		if err != nil {
			return true, err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return true, err
	case "", "wide":
		return false, nil
	}
	return true, fmt.Errorf("unknown output format %q (want yaml, json or wide)", format)
}

func age(t metav1.Time) string {
	if t.IsZero() {
		return "<none>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func newListCmd(kube *kubeFlags, streams genericclioptions.IOStreams) *cobra.Command {
	var all bool
	var branch, output string
	var arch archivedListFlags
	c := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List runs, newest first; --archived: the runs the run archive keeps",
		Example: "  flowci list -A\n  flowci list --branch main -o yaml\n  flowci list --archived --phase Failed --since 7d",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case arch.archived && all:
				return fmt.Errorf("--archived lists one namespace: name it with -n")
			case !arch.archived && arch.filtered() != "":
				return fmt.Errorf("%s filters archived runs: add --archived", arch.filtered())
			}
			k, err := kube.clients()
			if err != nil {
				return err
			}
			if arch.archived {
				return listArchived(cmd.Context(), k, streams, arch, branch, output)
			}
			list := &v1alpha1.PipelineRunList{}
			opts := []client.ListOption{}
			if !all {
				opts = append(opts, client.InNamespace(k.namespace))
			}
			if branch != "" {
				opts = append(opts, client.MatchingFields{v1alpha1.FieldBranch: branch})
			}
			if err := k.c.List(cmd.Context(), list, opts...); err != nil {
				return err
			}
			sort.SliceStable(list.Items, func(i, j int) bool {
				a, b := list.Items[i].CreationTimestamp, list.Items[j].CreationTimestamp
				return b.Before(&a)
			})
			if done, err := printObject(streams.Out, output, list); done {
				return err
			}
			scr := newScreen(streams.Out)
			tw := tabwriter.NewWriter(streams.Out, 0, 4, 3, ' ', 0)
			head := "NAME\tPHASE\tPROGRESS\tSTEP\tCOMMIT\tBRANCH\tAGE"
			if all {
				head = "NAMESPACE\t" + head
			}
			if output == "wide" {
				head += "\tREPO"
			}
			fmt.Fprintln(tw, head)
			for _, r := range list.Items {
				row := []string{r.Name, scr.paint(phaseColour(string(r.Status.Phase)), orNone(string(r.Status.Phase))), orNone(r.Status.Progress),
					orNone(r.Status.CurrentStep), orNone(r.Status.ShortCommit), orNone(r.Spec.Branch), age(r.CreationTimestamp)}
				if all {
					row = append([]string{r.Namespace}, row...)
				}
				if output == "wide" {
					row = append(row, r.Spec.RepoURL)
				}
				fmt.Fprintln(tw, strings.Join(row, "\t"))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVarP(&all, "all-namespaces", "A", false, "List runs of every namespace.")
	c.Flags().StringVar(&branch, "branch", "", "Only runs of this branch.")
	c.Flags().StringVarP(&output, "output", "o", "", "Output format: wide, yaml or json.")
	f := c.Flags()
	f.BoolVar(&arch.archived, "archived", false, "List the runs the run archive keeps (finished runs, also those deleted from the cluster).")
	f.StringVar(&arch.repo, "repo", "", "With --archived: only runs of this repository URL.")
	f.StringVar(&arch.commit, "commit", "", "With --archived: only runs of this commit (a SHA or a prefix of at least 4 hex digits).")
	f.StringVar(&arch.phase, "phase", "", "With --archived: only runs that ended in this phase (Succeeded, Failed, Cancelled).")
	f.StringVar(&arch.since, "since", "", "With --archived: only runs created since then: an RFC 3339 time, or a time ago (90m, 36h, 7d).")
	f.StringVar(&arch.until, "until", "", "With --archived: only runs created before then (as --since).")
	f.IntVar(&arch.limit, "limit", 100, "With --archived: list at most this many runs.")
	return c
}

func newDescribeCmd(kube *kubeFlags, streams genericclioptions.IOStreams) *cobra.Command {
	var output string
	var archived bool
	c := &cobra.Command{
		Use:   "describe RUN",
		Short: "Show a run: its commit and outcome, and its steps as a tree with state, duration, exit code and reason",
		Long: `Shows RUN: its commit and outcome, and its steps as a tree with state, duration, exit code
and reason. A run gone from the cluster (or with --archived) is shown from the run
archive's record of it: also its times, its logs, what the archive could not keep, its
events and the pipeline file that ran.`,
		Example: "  flowci describe build-7xk2p\n  flowci describe build-7xk2p --archived -o yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := kube.clients()
			if err != nil {
				return err
			}
			if archived {
				return describeArchived(cmd.Context(), k, streams, args[0], output, nil)
			}
			run, err := k.getRun(cmd.Context(), args[0])
			if apierrors.IsNotFound(err) {
				return describeArchived(cmd.Context(), k, streams, args[0], output, err)
			}
			if err != nil {
				return err
			}
			if done, err := printObject(streams.Out, output, run); done {
				return err
			}
			describe(newScreen(streams.Out), run)
			return nil
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "Output format: yaml or json (of an archived run: its record).")
	c.Flags().BoolVar(&archived, "archived", false, "Show the run archive's record of the newest run of that name, even if the run is in the cluster.")
	return c
}

// describe prints a run and its steps as a tree: each step under the step it waits for
// last in the file, so a sequence reads as a path and a diamond as its branches.
func describe(scr *screen, run *v1alpha1.PipelineRun) {
	st := run.Status
	branch := st.Branch
	if st.Detached {
		branch = "(detached)"
	}
	scr.line(fmt.Sprintf("Name:       %s/%s", run.Namespace, run.Name))
	scr.line(fmt.Sprintf("Repository: %s @ %s", run.Spec.RepoURL, orNone(branch)))
	scr.line(fmt.Sprintf("Commit:     %s", orNone(st.Commit)))
	scr.line(fmt.Sprintf("Pipeline:   %s", orNone(st.PipelineName)))
	scr.line(fmt.Sprintf("Phase:      %s %s", scr.paint(phaseColour(string(st.Phase)), orNone(string(st.Phase))), conditionMessage(run)))
	if st.StartTime != nil {
		end := time.Now()
		if st.CompletionTime != nil {
			end = st.CompletionTime.Time
		}
		scr.line(fmt.Sprintf("Duration:   %s (started %s ago)", end.Sub(st.StartTime.Time).Round(time.Second), age(*st.StartTime)))
	}
	scr.line("Steps:")
	index := map[string]int{}
	for i, s := range st.Steps {
		index[s.Name] = i
	}
	children := map[int][]int{}
	var roots []int
	for i, s := range st.Steps {
		parent := -1
		for _, d := range s.DependsOn {
			if j, ok := index[d]; ok && j > parent {
				parent = j
			}
		}
		if parent < 0 || s.Finally {
			roots = append(roots, i)
		} else {
			children[parent] = append(children[parent], i)
		}
	}
	var walk func(i int, indent string, last bool)
	walk = func(i int, indent string, last bool) {
		branch, next := "├─ ", indent+"│  "
		if last {
			branch, next = "└─ ", indent+"   "
		}
		scr.line(indent + branch + stepLine(scr, st.Steps[i]))
		for n, c := range children[i] {
			walk(c, next, n == len(children[i])-1)
		}
	}
	for n, r := range roots {
		walk(r, "  ", n == len(roots)-1)
	}
	describeFiles(scr, st)
	describeTiming(scr, run)
}

func stepLine(scr *screen, s v1alpha1.StepStatus) string {
	parts := []string{s.Name, scr.paint(phaseColour(string(s.Phase)), string(s.Phase))}
	if s.StartTime != nil && s.CompletionTime != nil {
		parts = append(parts, s.CompletionTime.Sub(s.StartTime.Time).Round(time.Second).String())
	}
	if s.ExitCode != nil {
		parts = append(parts, fmt.Sprintf("exit %d", *s.ExitCode))
	}
	if s.Reason != "" {
		parts = append(parts, s.Reason)
	}
	if len(s.DependsOn) > 1 {
		parts = append(parts, "(after "+strings.Join(s.DependsOn, ", ")+")")
	}
	if s.Finally {
		parts = append(parts, "(finally)")
	}
	return strings.Join(parts, "  ")
}
