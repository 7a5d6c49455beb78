package pipelinerun

import (
	"testing"

	. "github.com/onsi/gomega"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

const withChanges = `name: Monorepo
steps:
- name: api
  dependsOn: []
  when: {changes: ["api/**"]}
  commands: [make -C api]
- name: web
  dependsOn: []
  when: {changes: ["web/**", "shared/**"]}
  commands: [make -C web]
- name: all
  dependsOn: [api, web]
  commands: [make check]
`

// TestWhenChanges on a real git server: a run whose changes base is an earlier commit
// skips the steps whose when.changes matches none of the files changed since
// (WhenFalse, naming the filter) and runs the others; a run without a base (by hand)
// runs every step.
func TestWhenChanges(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	repo, url := serveRepo(t, withChanges)
	repo.SetConfig(t, "uploadpack.allowFilter", "true")
	base := repo.RevParse(t, "main")
	repo.Commit(t, map[string]string{"web/index.html": "<p>\n", "docs/x.md": "x\n"})
	startManager(t, ns)

	run := newRunObject(ns, "changed", url)
	run.Annotations = map[string]string{civ1alpha1.AnnotationChangesBase: base}
	createRun(t, run)
	pinned := pinnedRun(t, ns, "changed")
	api, web := pinned.Status.Steps[0], pinned.Status.Steps[1]
	g.Expect(api.Phase).To(Equal(civ1alpha1.StepSkipped))
	g.Expect(api.Reason).To(Equal(civ1alpha1.ReasonWhenFalse))
	g.Expect(api.Message).To(ContainSubstring("when.changes: no changed file matches paths [api/**] since " + base[:7]))
	g.Expect(web.Phase).To(Equal(civ1alpha1.StepPending), "web/index.html changed")

	createRun(t, newRunObject(ns, "by-hand", url))
	for _, s := range pinnedRun(t, ns, "by-hand").Status.Steps {
		g.Expect(s.Phase).NotTo(Equal(civ1alpha1.StepSkipped), "a run without a base counts every file as changed: %s %s", s.Name, s.Message)
	}
}
