//go:build e2e

package e2e

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

const matrixPipeline = `name: Matrix
steps:
- name: test
  dependsOn: []
  matrix:
    size: [small, large]
    flavor: [plain, salted]
  env:
    WORD: ${{ matrix.flavor }}-${{ matrix.size }}
  commands:
  - mkdir -p out
  - echo "$MATRIX_SIZE $MATRIX_FLAVOR $WORD" > "out/$MATRIX_SIZE-$MATRIX_FLAVOR"
- name: collect
  commands:
  - cat out/* | sort
`

// TestMatrixOnTheCluster: a 2 × 2 matrix runs as four steps, each with its values in
// its environment and env, and the step after it waits for all four.
func TestMatrixOnTheCluster(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": matrixPipeline}, gittest.HTTPOptions{})
	createRun(t, ns, "matrix", srv.RepoURL(repo), nil)
	run := waitFinished(t, ns, "matrix", 5*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), toJSON(run.Status))
	var names []string
	for _, s := range run.Status.Steps {
		names = append(names, s.Name)
	}
	g.Expect(names).To(Equal([]string{"test [size=small, flavor=plain]", "test [size=small, flavor=salted]",
		"test [size=large, flavor=plain]", "test [size=large, flavor=salted]", "collect"}))
	g.Expect(run.Status.Steps[4].DependsOn).To(Equal(names[:4]))
	logs, err := kubectl("-n", ns, "logs", "job/"+run.Status.Steps[4].JobName)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(logs).To(ContainSubstring("large plain plain-large\nlarge salted salted-large\nsmall plain plain-small\nsmall salted salted-small\n"))
	waitWorkspaceReleased(t, ns, "matrix")
}
