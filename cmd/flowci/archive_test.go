package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/api"
	archiveclient "github.com/flow-ci/flow-ci/internal/archive/client"
	"github.com/flow-ci/flow-ci/internal/archive/runrecord"
)

// t0 is when the tests' archived runs were created.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// goneRun is a run that ended and was deleted: lint passed, test failed on its second
// pod (the first was evicted), docs was skipped.
func goneRun(ns string) *v1alpha1.PipelineRun {
	exit := int32(3)
	start, end := metav1.NewTime(t0.Add(time.Second)), metav1.NewTime(t0.Add(time.Minute))
	return &v1alpha1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gone", UID: "uid-gone", CreationTimestamp: metav1.NewTime(t0)},
		Spec:       v1alpha1.PipelineRunSpec{RepoURL: "https://git.example/org/app.git", Branch: "main"},
		Status: v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseFailed, Commit: strings.Repeat("c", 40), ShortCommit: "ccccccc",
			StartTime: &start, CompletionTime: &end,
			Steps: []v1alpha1.StepStatus{
				{Name: "lint", Phase: v1alpha1.StepSucceeded, StartTime: &start, CompletionTime: &start},
				{Name: "test", Index: 1, DependsOn: []string{"lint"}, Phase: v1alpha1.StepFailed, ExitCode: &exit,
					Reason: v1alpha1.ReasonStepFailed, Message: "the tail only\n", StartTime: &start, CompletionTime: &end},
				{Name: "docs", Index: 2, DependsOn: []string{"test"}, Phase: v1alpha1.StepSkipped, Message: "an earlier step failed"},
			}}}
}

// goneLogs are goneRun's stored logs: bytes no text handling leaves alone, the test
// step's two pods named so that their names sort against the order they ran in, and
// the second without a final newline.
var goneLogs = []storedLog{
	{"clone-c1111", []byte("Cloning into '/workspace'...\n"), archive.LogState{Done: true, LastTime: t0}},
	{"step-0-l1111", []byte("\xff\xfe not UTF-8\r\n\x00ok\n"), archive.LogState{Done: true, LastTime: t0.Add(time.Second)}},
	{"step-1-zzzzz", []byte("attempt 1 until its eviction\n"), archive.LogState{Done: true, LastTime: t0.Add(2 * time.Second),
		Missing: "everything after byte 29: the pod was deleted before its log was read to the end"}},
	{"step-1-aaaaa", []byte("attempt 2\n--- FAIL: TestX"), archive.LogState{Done: true, LastTime: t0.Add(3 * time.Second)}},
}

// TestLogsOfDeletedRun: `flowci logs` of a run gone from the cluster finds it in the
// archive by name and prints every stored log exactly as stored, in graph order (the
// clone, then the steps, each step's pods in the order they ran), as the reader's
// token or exec plugin allows; a kubeconfig with a client certificate is told why it
// cannot read the archive, and without the archive the answer is today's, with a note.
func TestLogsOfDeletedRun(t *testing.T) {
	ns := env.NewNamespace(t)
	a := newTestArchive(t, true)
	a.put(t, ns, "uid-gone", goneLogs...)
	a.record(t, goneRun(ns), "name: app\n")
	token := env.ServiceAccountToken(t, ns, "reader", cliReader...)
	want := "==> clone: (from the run archive)\n" + string(goneLogs[0].bytes) +
		"==> lint: Succeeded (from the run archive)\n" + string(goneLogs[1].bytes) +
		"==> test: Failed (from the run archive)\n" + string(goneLogs[2].bytes) +
		"(the run archive could not store all of this log: " + goneLogs[2].state.Missing + ")\n" +
		"==> test: attempt 2 of 2 (from the run archive)\n" + string(goneLogs[3].bytes) + "\n" +
		"==> docs: Skipped (an earlier step failed)\n"
	for name, user := range map[string]*clientcmdapi.AuthInfo{"a token": {Token: token}, "an exec plugin": execCredential(token)} {
		code, out, errOut := runCLI(kubeconfig(t, user), a.ns, "-n", ns, "logs", "gone")
		if code != 0 || out != want {
			t.Errorf("%s: exit %d\n%q\nwant\n%q\n%s", name, code, out, want, errOut)
		}
		if !strings.Contains(errOut, "gone from the cluster") {
			t.Errorf("%s: where the logs come from is not said: %q", name, errOut)
		}
	}
	if code, out, _ := runCLI(kubeconfig(t, &clientcmdapi.AuthInfo{Token: token}), a.ns, "-n", ns, "logs", "-f", "gone"); code != 3 || out != want {
		t.Errorf("logs -f of the deleted run: exit %d, want the failed step's 3\n%s", code, out)
	}

	code, out, errOut := runCLI(env.Kubeconfig(t), a.ns, "-n", ns, "logs", "gone")
	if code != 1 || out != "" || !strings.Contains(errOut, "not found") || !strings.Contains(errOut, "client certificate, which the run archive cannot check") {
		t.Errorf("a client certificate: exit %d %q\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(kubeconfig(t, &clientcmdapi.AuthInfo{Token: token}), ns, "-n", ns, "logs", "gone")
	if code != 1 || out != "" || !strings.Contains(errOut, `"gone" not found`) || strings.Count(errOut, "--archive-url") != 1 {
		t.Errorf("without the archive: exit %d %q\n%s", code, out, errOut)
	}
}

// TestLogsOfStepsWhosePodsAreGone: for a run still in the cluster whose steps' pods are
// gone (envtest runs none), each step's whole log comes from the archive, read by the
// run's UID before the archive has a record of it; a step the archive has no log of
// shows the tail kept in status. Without the archive, every step shows its tail as
// before, and a note says once how to configure the archive.
func TestLogsOfStepsWhosePodsAreGone(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	a := newTestArchive(t, true)
	run := goneRun(ns)
	run.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "live"}
	status := run.Status
	status.Steps[2] = v1alpha1.StepStatus{Name: "report", Index: 2, DependsOn: []string{"test"}, Phase: v1alpha1.StepFailed,
		Message: "report's tail\n"}
	if err := env.Client.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	run.Status = status
	if err := env.Client.Status().Update(ctx, run); err != nil {
		t.Fatal(err)
	}
	a.put(t, ns, string(run.UID), goneLogs[1:]...)
	kc := kubeconfig(t, &clientcmdapi.AuthInfo{Token: env.ServiceAccountToken(t, ns, "reader", cliReader...)})

	code, out, errOut := runCLI(kc, a.ns, "-n", ns, "logs", "live")
	want := "==> lint: Succeeded (its pods are gone; its log from the run archive follows)\n" + string(goneLogs[1].bytes) +
		"==> test: Failed (its pods are gone; its log from the run archive follows)\n" + string(goneLogs[2].bytes) +
		"(the run archive could not store all of this log: " + goneLogs[2].state.Missing + ")\n" +
		"==> test: attempt 2 of 2 (from the run archive)\n" + string(goneLogs[3].bytes) + "\n" +
		"==> report: Failed (its pods are gone; the log tail kept in the run's status follows)\nreport's tail\n"
	if code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d\n%q\nwant\n%q\nstderr: %s", code, out, want, errOut)
	}

	code, out, errOut = runCLI(kc, ns, "-n", ns, "logs", "live")
	want = "==> lint: Succeeded (its pods are gone; the log tail kept in the run's status follows)\n" +
		"==> test: Failed (its pods are gone; the log tail kept in the run's status follows)\nthe tail only\n" +
		"==> report: Failed (its pods are gone; the log tail kept in the run's status follows)\nreport's tail\n"
	if code != 0 || out != want || strings.Count(errOut, "--archive-url") != 1 {
		t.Errorf("without the archive: exit %d\n%q\nwant\n%q\nstderr: %s", code, out, want, errOut)
	}
}

// TestListArchived: list --archived shows the archived runs of the namespace, newest
// first, filtered by the archive, up to --limit, reading page after page.
func TestListArchived(t *testing.T) {
	ns := env.NewNamespace(t)
	a := newTestArchive(t, true)
	for i, r := range []struct{ branch, phase, commit string }{
		{"main", "Succeeded", "aaaa0000"}, {"feature/x", "Failed", "bbbb0001"}, {"main", "Failed", "bbbb0002"},
		{"feature/x", "Failed", "aaaa0003"}, {"main", "Succeeded", "aaaa0004"},
	} {
		if err := a.store.PutRecord(context.Background(), archive.Record{UID: "uid-" + string(rune('a'+i)), Namespace: ns,
			Name: "run-" + string(rune('a'+i)), RepoURL: "https://git.example/org/app.git", Branch: r.branch, Phase: r.phase,
			Commit: r.commit + strings.Repeat("0", 32), Created: t0.Add(time.Duration(i) * time.Hour), Doc: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	kc := kubeconfig(t, &clientcmdapi.AuthInfo{Token: env.ServiceAccountToken(t, ns, "reader", cliReader...)})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "run-e run-d run-c run-b run-a"},
		{[]string{"--branch", "feature/x"}, "run-d run-b"},
		{[]string{"--phase", "Failed", "--commit", "BBBB"}, "run-c run-b"},
		{[]string{"--since", t0.Add(time.Hour).Format(time.RFC3339), "--until", t0.Add(3 * time.Hour).Format(time.RFC3339)}, "run-c run-b"},
		{[]string{"--repo", "https://git.example/org/other.git"}, ""},
		{[]string{"--limit", "2"}, "run-e run-d"},
	} {
		code, out, errOut := runCLI(kc, a.ns, append([]string{"-n", ns, "list", "--archived", "-o", "json"}, tc.args...)...)
		var runs []api.Summary
		if err := json.Unmarshal([]byte(out), &runs); code != 0 || err != nil {
			t.Fatalf("%v: exit %d, %v\n%s%s", tc.args, code, err, out, errOut)
		}
		var names []string
		for _, r := range runs {
			names = append(names, r.Name)
		}
		if got := strings.Join(names, " "); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.args, got, tc.want)
		}
	}
	// Pages of 2: the list follows each page's next up to the limit.
	reader := archiveclient.New(a.srv.URL, env.ServiceAccountToken(t, ns, "pager", cliReader...), a.srv.Client())
	for _, tc := range []struct {
		limit, want int
		more        bool
	}{{5, 5, false}, {3, 3, true}, {9, 5, false}} {
		runs, more, err := listArchivedRuns(context.Background(), reader, ns, archiveclient.Filter{}, tc.limit, 2)
		if err != nil || len(runs) != tc.want || more != tc.more || runs[0].Name != "run-e" || runs[len(runs)-1].Name != "run-"+string(rune('a'+5-tc.want)) {
			t.Errorf("limit %d in pages of 2: %d runs (more %v), %v; want %d (more %v)", tc.limit, len(runs), more, err, tc.want, tc.more)
		}
	}
	code, out, errOut := runCLI(kc, a.ns, "-n", ns, "list", "--archived", "--phase", "Failed")
	if code != 0 || !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "run-d   Failed   aaaa000") {
		t.Errorf("the table: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(kc, a.ns, "-n", ns, "list", "--archived", "--limit", "3"); code != 0 || !strings.Contains(errOut, "more archived runs match") {
		t.Errorf("--limit below the matches: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI(kc, a.ns, "-n", ns, "list", "--phase", "Failed"); code != 1 || !strings.Contains(errOut, "add --archived") {
		t.Errorf("an archive filter without --archived: exit %d, %q", code, errOut)
	}
}

// TestDescribeArchived: describe of a run gone from the cluster prints its record from
// the archive: phase, commit, times, its steps with exit code and reason, what the
// archive could not keep, its events and the pipeline file; -o json is the record.
func TestDescribeArchived(t *testing.T) {
	ns := env.NewNamespace(t)
	a := newTestArchive(t, true)
	a.put(t, ns, "uid-gone", goneLogs...)
	a.record(t, goneRun(ns), "name: app\nsteps:\n- name: lint\n", corev1.Event{Type: "Warning", Reason: v1alpha1.ReasonStepFailed,
		Message: `step "test" failed with exit code 3`, Count: 2, LastTimestamp: metav1.NewTime(t0.Add(time.Minute))})
	kc := kubeconfig(t, &clientcmdapi.AuthInfo{Token: env.ServiceAccountToken(t, ns, "reader", cliReader...)})

	code, out, errOut := runCLI(kc, a.ns, "-n", ns, "describe", "gone")
	for _, want := range []string{
		"Name:       " + ns + "/gone\n", "Commit:     " + strings.Repeat("c", 40) + "\n", "Phase:      Failed",
		"  └─ lint  Succeeded  0s\n     └─ test  Failed  59s  exit 3  StepFailed\n        └─ docs  Skipped\n",
		"Created:    2026-03-01T12:00:00Z\n", "Finished:   2026-03-01T12:01:00Z\n", "Archived:   2026-03-01T13:00:00Z (UID uid-gone)\n",
		"  step-1-zzzzz  29 bytes\n",
		"Missing:\n  - step \"test\" (step-1-zzzzz): everything after byte 29: the pod was deleted before its log was read to the end\n",
		"Events:\n  2026-03-01T12:01:00Z  Warning  StepFailed  step \"test\" failed with exit code 3 (x2)\n",
		"Pipeline file:\n  name: app\n  steps:\n  - name: lint\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
	if code != 0 || !strings.Contains(errOut, "gone from the cluster") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	code, out, _ = runCLI(kc, a.ns, "-n", ns, "describe", "gone", "--archived", "-o", "json")
	var doc runrecord.Document
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil || doc.Run.UID != "uid-gone" || len(doc.Events) != 1 || doc.PipelineFile == "" {
		t.Errorf("-o json: exit %d, %v\n%s", code, err, out)
	}
	code, _, errOut = runCLI(kc, a.ns, "-n", ns, "describe", "never")
	if code != 1 || !strings.Contains(errOut, `"never" not found`) || !strings.Contains(errOut, "the archive holds no such run") {
		t.Errorf("a run neither in the cluster nor in the archive: exit %d, %q", code, errOut)
	}
}
