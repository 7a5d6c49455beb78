package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/localrun"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

const defaultFile = "build/flow-ci.yaml"

func isTerminal(fd uintptr) bool { return term.IsTerminal(int(fd)) }

// readPipeline reads and parses file; a parse error names the file and the line.
func readPipeline(file string) (*pipeline.Definition, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	def, err := pipeline.Parse(raw)
	if err != nil {
		return nil, lintError{file: file, err: err}
	}
	return def, nil
}

// lintError prints every problem as file:line: message, which editors jump to.
type lintError struct {
	file string
	err  error
}

func (e lintError) Error() string {
	var pe *pipeline.Error
	if !errors.As(e.err, &pe) {
		return e.file + ": " + e.err.Error()
	}
	var out []string
	for _, p := range pe.Problems {
		where := e.file
		if p.Line > 0 {
			where = fmt.Sprintf("%s:%d", e.file, p.Line)
		}
		msg := p.Msg
		if p.Path != "" {
			msg = p.Path + ": " + msg
		}
		out = append(out, where+": "+msg)
	}
	return strings.Join(out, "\n")
}

func fileArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return defaultFile
}

func newRunCmd(streams genericclioptions.IOStreams) *cobra.Command {
	var o localrun.Options
	var clean bool
	var secretFiles, secretEnv []string
	c := &cobra.Command{
		Use:   "run [FILE]",
		Short: "Run the pipeline of this working copy with /bin/sh, as the operator would",
		Long: `Runs build/flow-ci.yaml (or FILE) of the working copy with the operator's own parser,
graph, step script and environment: steps that may overlap run side by side up to -j,
their lines prefixed with [step]; each command is echoed as "+ command" and a step stops
at its first failing command. Steps share a temporary HOME (or --home). Images named in
the file are not used: the commands run on this machine.

Secrets come from this machine only (--secrets-file, --secret-env), never from a
cluster; a step that asks for one that is not given fails, and every value is shown as
*** (docs/secrets.md).

The exit code is 0 when the pipeline succeeds, else the failed step's exit code.`,
		Example: `  flowci run                  # the whole pipeline
  flowci run --step test      # one step
  flowci run --from build -j 4 --clean
  flowci run --secret-env deploy-token/token=DEPLOY_TOKEN`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := fileArg(args)
			def, err := readPipeline(file)
			if err != nil {
				return err
			}
			root, err := filepath.Abs(filepath.Dir(filepath.Dir(file)))
			if err != nil {
				return err
			}
			if wc, err := workingCopy(filepath.Dir(file)); err == nil {
				root, o.Repo, o.Branch, o.Commit = wc.root, wc.remote, wc.branch, wc.head
			}
			o.Dir, o.Out = root, streams.Out
			if o.Secrets, err = localSecrets(secretFiles, secretEnv); err != nil {
				return err
			}
			if clean {
				tmp, err := cleanCheckout(root, o.Commit)
				if err != nil {
					return err
				}
				defer func() { _ = os.RemoveAll(tmp) }()
				o.Dir = tmp
				fmt.Fprintf(streams.ErrOut, "flowci: running a clean checkout of %s in %s\n", shorten.SHA(o.Commit), tmp)
			}
			cleanup, err := stepsHome(&o)
			if err != nil {
				return err
			}
			defer cleanup()
			if images := imagesOf(&def.Pipeline); len(images) > 0 {
				fmt.Fprintf(streams.ErrOut, "flowci: not using the images %s: the commands run on this machine\n", strings.Join(images, ", "))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := localrun.Run(ctx, &def.Pipeline, def.Digest, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "==> pipeline %q: %s\n", def.Pipeline.Name, res.Run.Status.Phase)
			if res.ExitCode != 0 {
				return exitError{code: res.ExitCode}
			}
			return nil
		},
	}
	addRunFlags(c.Flags(), &o, &clean, &secretFiles, &secretEnv)
	return c
}

// addRunFlags registers the flags of flowci run.
func addRunFlags(f *pflag.FlagSet, o *localrun.Options, clean *bool, secretFiles, secretEnv *[]string) {
	f.StringVar(&o.Only, "step", "", "Run only this step.")
	f.StringVar(&o.From, "from", "", "Start at this step: the steps it depends on are taken as done.")
	f.IntVarP(&o.Jobs, "jobs", "j", 1, "Steps that run at once.")
	f.BoolVar(clean, "clean", false, "Run a fresh clone of HEAD, so uncommitted files cannot leak in.")
	f.StringVar(&o.Home, "home", "", "HOME of the steps (default: a temporary directory).")
	f.StringVar(&o.ArtifactsDir, "artifacts-dir", "flowci-artifacts", "Where the files steps keep (artifacts:) are copied, at their paths; empty keeps none.")
	f.StringArrayVar(secretFiles, "secrets-file", nil, "A YAML file of Secrets the run exposes: SECRET: {KEY: value}. Never read from a cluster; values are masked.")
	f.StringArrayVar(secretEnv, "secret-env", nil, "SECRET/KEY=VARIABLE: a Secret's key from this environment variable (repeatable).")
}

// stepsHome makes o.Home, a temporary directory unless the user named one; cleanup
// removes a temporary one.
func stepsHome(o *localrun.Options) (cleanup func(), err error) {
	if o.Home != "" {
		return func() {}, os.MkdirAll(o.Home, 0o755)
	}
	home, err := os.MkdirTemp("", "flowci-home-")
	if err != nil {
		return nil, err
	}
	o.Home = home
	return func() { _ = os.RemoveAll(home) }, nil
}

// cleanCheckout clones the working copy at root into a temporary directory and checks
// out commit, so uncommitted files cannot leak into a local run.
func cleanCheckout(root, commit string) (string, error) {
	if commit == "" {
		return "", errors.New("--clean needs a git working copy")
	}
	tmp, err := os.MkdirTemp("", "flowci-clean-")
	if err != nil {
		return "", err
	}
	if out, err := exec.Command("git", "clone", "--quiet", "--no-checkout", root, tmp).CombinedOutput(); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("git clone: %v: %s", err, out)
	}
	if out, err := exec.Command("git", "-C", tmp, "checkout", "--quiet", "--detach", commit).CombinedOutput(); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("git checkout: %v: %s", err, out)
	}
	return tmp, nil
}

func imagesOf(p *pipeline.Pipeline) []string {
	seen := map[string]bool{}
	var out []string
	for i := range p.All() {
		if img := p.StepImage(i, ""); img != "" && !seen[img] {
			seen[img] = true
			out = append(out, img)
		}
	}
	return out
}

func newLintCmd(streams genericclioptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:     "lint [FILE]",
		Short:   "Check a pipeline file; errors read file:line: field: problem",
		Example: "  flowci lint build/flow-ci.yaml",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := fileArg(args)
			def, err := readPipeline(file)
			var le lintError
			if errors.As(err, &le) {
				fmt.Fprintln(streams.ErrOut, le.Error())
				return exitError{code: 1}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "%s: pipeline %q, %d steps: ok\n", file, def.Pipeline.Name, len(def.Pipeline.All()))
			return nil
		},
	}
}

func newRenderCmd(streams genericclioptions.IOStreams) *cobra.Command {
	cfg := render.Config{}
	c := &cobra.Command{
		Use:     "render [FILE]",
		Short:   "Print the step Jobs a run of the pipeline would create, as YAML",
		Example: "  flowci render | kubectl apply --dry-run=server -f -",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := fileArg(args)
			def, err := readPipeline(file)
			if err != nil {
				return err
			}
			o := localrun.Options{}
			if wc, err := workingCopy(filepath.Dir(file)); err == nil {
				o.Repo, o.Branch, o.Commit = wc.remote, wc.branch, wc.head
			}
			run := localrun.LocalRun(&def.Pipeline, def.Digest, o)
			run.UID = "00000000-0000-0000-0000-000000000000"
			run.TypeMeta.APIVersion, run.TypeMeta.Kind = v1alpha1.GroupVersion.String(), "PipelineRun"
			for i := range def.Pipeline.All() {
				job, err := render.RenderStepJob(run, &def.Pipeline, i, "", cfg)
				if err != nil {
					return err
				}
				job.APIVersion, job.Kind = "batch/v1", "Job"
				b, err := yaml.Marshal(job)
				if err != nil {
					return err
				}
				fmt.Fprintf(streams.Out, "---\n%s", b)
			}
			return nil
		},
	}
	c.Flags().StringVar(&cfg.DefaultStepImage, "default-step-image", "busybox:1.37", "Image of steps whose pipeline names none (the operator's flag).")
	return c
}
