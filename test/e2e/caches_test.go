//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// cachedPipeline builds the demo program with a go cache keyed by go.mod; every run
// first checks that no run left a poison file in the module cache it restored. The
// fork's version writes one.
func cachedPipeline(poison bool) string {
	write := ""
	if poison {
		write = "\n  - mkdir -p \"$GOMODCACHE\" && echo poisoned > \"$GOMODCACHE/poison\""
	}
	return `name: Cached
image: localhost/go:local
caches:
- name: go
  preset: go
  key: {files: [go.mod]}
steps:
- name: build
  env: {CGO_ENABLED: "0"}
  commands:
  - test ! -e "$GOMODCACHE/poison"
  - go vet ./...
  - go test ./...
  - go build -o bin/app .` + write + "\n"
}

// TestCachesAcrossRunsAndBranches: a trigger with cacheWrite builds main: its first run
// misses and saves the go cache, its second restores it (from main, by key); a fork's
// run (untrusted) restores main's but has no saving step, and what it wrote into the
// cache reaches no later run; a new branch with another go.mod restores main's entry by
// the restore key and saves its own.
func TestCachesAcrossRunsAndBranches(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	files := demoProgram(t)
	files["build/flow-ci.yaml"] = cachedPipeline(false)
	repo, srv := gitServer(t, files, gittest.HTTPOptions{})
	tr := &civ1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Spec: civ1alpha1.PipelineTriggerSpec{
		RepoURL: srv.RepoURL(repo), Branches: []string{"main", "feature"}, Interval: &metav1.Duration{Duration: 10 * time.Second}, CacheWrite: true,
	}}
	g.Expect(k8s.Create(ctx, tr)).To(Succeed())
	succeeded := func(commit string) *civ1alpha1.PipelineRun {
		var run *civ1alpha1.PipelineRun
		g.Eventually(func(g Gomega) {
			list := &civ1alpha1.PipelineRunList{}
			g.Expect(k8s.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{civ1alpha1.LabelCommit: commit})).To(Succeed())
			g.Expect(list.Items).To(HaveLen(1))
			run = &list.Items[0]
			g.Expect(run.Status.Phase).To(BeElementOf(civ1alpha1.PhaseSucceeded, civ1alpha1.PhaseFailed))
		}).WithTimeout(6 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), toJSON(run.Status))
		g.Expect(run.Status.Caches).To(HaveLen(1), toJSON(run.Status))
		return run
	}
	took := func(run *civ1alpha1.PipelineRun) time.Duration {
		s := run.Status.Steps[0]
		return s.CompletionTime.Sub(s.StartTime.Time)
	}

	first := succeeded(repo.RevParse(t, "main"))
	c := first.Status.Caches[0]
	g.Expect(c.RestoredKey).To(BeEmpty(), "nothing to restore yet: %s", c.Message)
	g.Expect(c.Saved).To(BeTrue(), toJSON(c))
	g.Expect(first.Status.Steps[len(first.Status.Steps)-1].Name).To(Equal(pipeline.SaveCachesStep))
	key := c.Key

	second := succeeded(repo.CommitOn(t, "main", map[string]string{"README.md": "again\n"}))
	c = second.Status.Caches[0]
	g.Expect(c.RestoredKey).To(Equal(key), toJSON(c))
	g.Expect(c.RestoredFrom).To(Equal("main"))
	t.Logf("the build step took %s cold and %s with the go cache restored (%d bytes in %s)", took(first).Round(time.Second), took(second).Round(time.Second),
		c.RestoredBytes, c.RestoreTime.Duration)

	// A fork's run: what a trigger makes of a fork's pull request, labels and all.
	gittest.Git(t, repo.Path, "branch", "patch", "main")
	forkCommit := repo.CommitOn(t, "patch", map[string]string{"build/flow-ci.yaml": cachedPipeline(true)})
	createRun(t, ns, "fork", srv.RepoURL(repo), func(r *civ1alpha1.PipelineRun) {
		r.Spec.Branch, r.Spec.Revision = "patch", forkCommit
		r.Labels = map[string]string{civ1alpha1.LabelCacheWrite: "true", civ1alpha1.LabelUntrusted: "true"}
	})
	fork := waitFinished(t, ns, "fork", 6*time.Minute)
	g.Expect(fork.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), toJSON(fork.Status))
	g.Expect(fork.Status.Steps).To(HaveLen(1), "an untrusted run has no saving step")
	g.Expect(fork.Status.Caches).To(HaveLen(1))
	g.Expect(fork.Status.Caches[0].RestoredFrom).To(Equal("main"), "it restores main's entry")
	g.Expect(fork.Status.Caches[0].Saved).To(BeFalse())

	// A new branch with another go.mod: main's entry by the restore key, and no poison.
	// Made aside and renamed, so that the trigger first sees the branch at its new commit.
	gittest.Git(t, repo.Path, "branch", "next", "main")
	feature := repo.CommitOn(t, "next", map[string]string{"go.mod": strings.Replace(files["go.mod"], "\n", "\n// feature\n", 1)})
	gittest.Git(t, repo.Path, "branch", "-m", "next", "feature")
	third := succeeded(feature)
	c = third.Status.Caches[0]
	g.Expect(c.Key).NotTo(Equal(key))
	g.Expect(c.RestoredKey).To(Equal(key), toJSON(c))
	g.Expect(c.RestoredFrom).To(Equal("main"))
	g.Expect(c.Saved).To(BeTrue(), "a new key is saved under the branch")
	t.Logf("a new branch restored main's entry by its restore key; its build took %s", took(third).Round(time.Second))
}
