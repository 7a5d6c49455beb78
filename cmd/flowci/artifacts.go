package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"text/tabwriter"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/flow-ci/flow-ci/internal/archive/api"
	archiveclient "github.com/flow-ci/flow-ci/internal/archive/client"
)

func newArtifactsCmd(kube *kubeFlags, streams genericclioptions.IOStreams) *cobra.Command {
	c := &cobra.Command{
		Use:   "artifacts",
		Short: "List and download the files a run's steps kept, also after the run is gone",
		Long: `The files a step names under artifacts: in the pipeline file are kept in the run
archive once the step ends. They can be read for as long as the archive keeps the run's
record, by whoever may read the run's logs (get on pods/log in its namespace).`,
	}
	c.AddCommand(newArtifactsLsCmd(kube, streams), newArtifactsGetCmd(kube, streams))
	return c
}

func newArtifactsLsCmd(kube *kubeFlags, streams genericclioptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:     "ls RUN",
		Short:   "List the files the run's steps kept, with their sizes and sha256",
		Example: "  flowci artifacts ls build-7xk2p -n ci",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, k, uid, err := artifactsOf(cmd.Context(), kube, args[0])
			if err != nil {
				return err
			}
			list, err := c.Artifacts(cmd.Context(), k.namespace, args[0], uid)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "STEP\tPATH\tSIZE\tSHA256")
			for _, a := range list.Items {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", a.StepName, a.Path, a.Size, a.SHA256)
			}
			return w.Flush()
		},
	}
}

func newArtifactsGetCmd(kube *kubeFlags, streams genericclioptions.IOStreams) *cobra.Command {
	dir, force := "", false
	c := &cobra.Command{
		Use:   "get RUN [PATH...]",
		Short: "Download the files the run kept (all, or those named) into a directory, checking each sha256",
		Long: `Downloads each file to DIR/PATH (DIR defaults to ./RUN-artifacts), creating
directories as needed, and checks its length and sha256 against what the archive
stored; a file that does not match is removed and the command fails. A file that exists
is not replaced unless --force is given: a run's files are its steps' choice, and must
not overwrite a checkout's.`,
		Example: "  flowci artifacts get build-7xk2p -n ci -o out\n  flowci artifacts get build-7xk2p bin/app",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, k, uid, err := artifactsOf(cmd.Context(), kube, args[0])
			if err != nil {
				return err
			}
			paths := args[1:]
			if len(paths) == 0 {
				list, err := c.Artifacts(cmd.Context(), k.namespace, args[0], uid)
				if err != nil {
					return err
				}
				for _, a := range list.Items {
					paths = append(paths, a.Path)
				}
			}
			if dir == "" {
				dir = args[0] + "-artifacts"
			}
			root, err := openDir(dir)
			if err != nil {
				return err
			}
			defer root.Close()
			for _, p := range paths {
				if err := download(cmd.Context(), c, root, k.namespace, args[0], uid, p, force); err != nil {
					return err
				}
				fmt.Fprintln(streams.Out, path.Join(dir, p))
			}
			return nil
		},
	}
	c.Flags().StringVarP(&dir, "output", "o", "", "Directory to write the files into (default ./RUN-artifacts).")
	c.Flags().BoolVar(&force, "force", false, "Replace files that exist in the directory.")
	return c
}

// artifactsOf is the archive's client and the UID of the run named name when it is
// still in the cluster ("" when it is gone: the archive's newest run of that name).
func artifactsOf(ctx context.Context, kube *kubeFlags, name string) (*archiveclient.Client, *clients, string, error) {
	k, err := kube.clients()
	if err != nil {
		return nil, nil, "", err
	}
	uid := ""
	switch run, err := k.getRun(ctx, name); {
	case err == nil:
		uid = string(run.UID)
	case !apierrors.IsNotFound(err):
		return nil, nil, "", err
	}
	if k.archive == nil {
		return nil, nil, "", errArchiveNotConfigured
	}
	c, err := k.archive.client(ctx)
	return c, k, uid, err
}

func openDir(dir string) (*os.Root, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return os.OpenRoot(dir)
}

// download writes one file through root (no path or symlink leads out of the
// directory), first under a temporary name, renamed once its sha256 is checked.
func download(ctx context.Context, c *archiveclient.Client, root *os.Root, ns, run, uid, p string, force bool) error {
	if err := api.CheckArtifactPath(p); err != nil {
		return err
	}
	if _, err := root.Lstat(p); err == nil && !force {
		return fmt.Errorf("%s exists: not replaced (--force replaces it)", p)
	}
	if d := path.Dir(p); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	tmp := p + ".flowci-download"
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, _, err = c.Artifact(ctx, ns, run, uid, p, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, p)
	}
	if err != nil {
		_ = root.Remove(tmp)
		if errors.Is(err, archiveclient.ErrChecksum) {
			return fmt.Errorf("%s: %w (not written)", p, err)
		}
		return err
	}
	return nil
}
