package localrun

import (
	"fmt"
	"io"
	"os"
	"path"

	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/wsfiles"
)

// keepArtifacts copies the files a step keeps into o.ArtifactsDir/<path>, as a cluster
// keeps them in the archive: collected from the checkout by the same rules (no symlink
// out of it), and only when the step's end matches its when. It says in the step's
// output what it kept and what it refused.
func keepArtifacts(step *pipeline.Step, e ended, o Options, w io.Writer) {
	code := 1
	if e.ExitCode != nil {
		code = int(*e.ExitCode)
	}
	if o.ArtifactsDir == "" || !step.Artifacts.Keeps(code) {
		return
	}
	res, err := wsfiles.Collect(o.Dir, step.Artifacts.Paths, wsfiles.DefaultLimits())
	if err != nil {
		fmt.Fprintf(w, "flow-ci: artifacts not kept: %v\n", err)
		return
	}
	for _, p := range res.Unmatched {
		fmt.Fprintf(w, "flow-ci: artifact path %s matched no file\n", p)
	}
	for _, r := range res.Refused {
		fmt.Fprintf(w, "flow-ci: artifact %s not kept: %s\n", r.Path, r.Reason)
	}
	if len(res.Files) == 0 {
		return
	}
	if err := os.MkdirAll(o.ArtifactsDir, 0o755); err != nil {
		fmt.Fprintf(w, "flow-ci: artifacts not kept: %v\n", err)
		return
	}
	dest, err := os.OpenRoot(o.ArtifactsDir)
	if err != nil {
		fmt.Fprintf(w, "flow-ci: artifacts not kept: %v\n", err)
		return
	}
	defer dest.Close()
	for _, f := range res.Files {
		if err := copyArtifact(o.Dir, dest, f.Path); err != nil {
			fmt.Fprintf(w, "flow-ci: artifact %s not kept: %v\n", f.Path, err)
			continue
		}
		fmt.Fprintf(w, "flow-ci: kept artifact %s (%d bytes) in %s\n", f.Path, f.Size, o.ArtifactsDir)
	}
}

func copyArtifact(src string, dest *os.Root, rel string) error {
	in, _, err := wsfiles.Open(src, rel)
	if err != nil {
		return err
	}
	defer in.Close()
	if d := path.Dir(rel); d != "." {
		if err := dest.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	out, err := dest.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
