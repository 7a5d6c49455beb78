// Command flowci is flow-ci's CLI and kubectl plugin (installed also as kubectl-flowci):
// it runs a pipeline on this machine exactly as the operator runs it on a cluster, and
// starts, follows and manages PipelineRuns in a cluster.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// version is set at build time (-ldflags "-X main.version=..."); otherwise it is the
// module version go install recorded.
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

// exitError ends the process with a code: a pipeline's failed step's exit code.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run(os.Args, genericclioptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}))
}

// run executes the CLI and returns the process's exit code.
func run(args []string, streams genericclioptions.IOStreams) int {
	root := newRoot(filepath.Base(args[0]), streams)
	root.SetArgs(args[1:])
	err := root.Execute()
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	fmt.Fprintln(streams.ErrOut, "error:", err)
	return 1
}

// newRoot builds the command tree; as kubectl-flowci it names itself "kubectl flowci".
func newRoot(binary string, streams genericclioptions.IOStreams) *cobra.Command {
	use := "flowci"
	if strings.HasPrefix(binary, "kubectl-") {
		use = "kubectl flowci"
	}
	root := &cobra.Command{
		Use:           use,
		Short:         "Run flow-ci pipelines locally, and start, follow and manage them in a cluster",
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetIn(streams.In)
	kube := newKubeFlags()
	kube.config.AddFlags(root.PersistentFlags())
	kube.archive.addFlags(root.PersistentFlags())
	root.AddGroup(&cobra.Group{ID: "local", Title: "On this machine:"}, &cobra.Group{ID: "cluster", Title: "In a cluster:"})
	for _, c := range []*cobra.Command{newRunCmd(streams), newLintCmd(streams), newRenderCmd(streams)} {
		c.GroupID = "local"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{
		newStartCmd(kube, streams), newLogsCmd(kube, streams), newListCmd(kube, streams), newDescribeCmd(kube, streams),
		newCancelCmd(kube, streams), newWaitCmd(kube, streams), newRerunCmd(kube, streams), newResumeCmd(kube, streams), newApproveCmd(kube, streams), newUICmd(kube, streams),
		newArtifactsCmd(kube, streams),
	} {
		c.GroupID = "cluster"
		root.AddCommand(c)
	}
	return root
}

// terminal reports whether w is a terminal: colour and live progress only then.
func terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f.Fd())
}
