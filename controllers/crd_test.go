package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

func validRun(ns, name string) *civ1alpha1.PipelineRun {
	return &civ1alpha1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       civ1alpha1.PipelineRunSpec{RepoURL: "https://git.example.com/org/repo.git"},
	}
}

func TestCRDDefaults(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	run := validRun(ns, "defaults")
	if err := env.Client.Create(ctx, run); err != nil {
		t.Fatalf("creating a valid run: %v", err)
	}
	got := &civ1alpha1.PipelineRun{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(run), got); err != nil {
		t.Fatal(err)
	}
	// The Go defaults that code without the CRD's defaulting uses must be the CRD's.
	oneGi := resource.MustParse(civ1alpha1.DefaultWorkspaceSize)
	want := civ1alpha1.PipelineRunSpec{
		RepoURL:           "https://git.example.com/org/repo.git",
		Branch:            "main",
		PipelinePath:      "build/flow-ci.yaml",
		Timeout:           &metav1.Duration{Duration: civ1alpha1.DefaultTimeout},
		ConcurrencyPolicy: civ1alpha1.ConcurrencyAllow,
		Workspace: civ1alpha1.WorkspaceSpec{
			Size:        &oneGi,
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		},
	}
	if diff := cmp.Diff(want, got.Spec, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
		t.Errorf("defaulted spec (-want +got):\n%s", diff)
	}
}

func TestCRDValidationOnCreate(t *testing.T) {
	ns := env.NewNamespace(t)
	sha1 := strings.Repeat("a", 40)
	cases := []struct {
		name    string
		mutate  func(*civ1alpha1.PipelineRunSpec)
		wantErr string // substring of the API error; "" means accepted
	}{
		{"https", func(s *civ1alpha1.PipelineRunSpec) {}, ""},
		{"http", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "http://10.88.0.1:8080/repo.git" }, ""},
		{"ssh", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "ssh://git@github.com/org/repo.git" }, ""},
		{"scp-like", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "git@github.com:org/repo.git" }, ""},
		{"branch with slash", func(s *civ1alpha1.PipelineRunSpec) { s.Branch = "feature/new-thing_2.0" }, ""},
		{"sha1 revision", func(s *civ1alpha1.PipelineRunSpec) { s.Revision = sha1 }, ""},
		{"sha256 revision", func(s *civ1alpha1.PipelineRunSpec) { s.Revision = strings.Repeat("0", 64) }, ""},
		{"nested pipeline path", func(s *civ1alpha1.PipelineRunSpec) { s.PipelinePath = "ci/my.flow-ci.yaml" }, ""},
		{"service account", func(s *civ1alpha1.PipelineRunSpec) { s.ServiceAccountName = "ci-bot" }, ""},

		{"missing repoURL", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "" }, "spec.repoURL"},
		{"file url", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "file:///etc/passwd" }, "repoURL must be an https://"},
		{"ext transport", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "ext::sh -c touch% /tmp/pwned" }, "repoURL must be an https://"},
		{"plain path", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "/srv/git/repo.git" }, "repoURL must be an https://"},
		{"leading dash", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "-uhttps://x/y" }, "repoURL must be an https://"},
		{"scp-like option host", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "git@-oProxyCommand=x:repo" }, "repoURL must be an https://"},
		{"git protocol", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "git://github.com/org/repo.git" }, "repoURL must be an https://"},
		{"space in url", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "https://host/a b.git" }, "repoURL must be an https://"},
		{"password in url", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "https://bob:hunter2@host/repo.git" }, "repoURL must not carry a user or token"},
		{"token as user", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "https://ghp_TOKEN@host/repo.git" }, "repoURL must not carry a user or token"},
		{"uppercase scheme token", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "HTTPS://ghp_TOKEN@host/repo.git" }, "repoURL must not carry a user or token"},
		{"ssh password", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "ssh://git:PASS@host/repo.git" }, "repoURL must not carry a password"},
		{"ssh user is fine", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "ssh://git@host/repo.git" }, ""},
		{"access token query", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "https://host/repo.git?access_token=x" }, "repoURL must not have a query"},
		{"fragment", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "https://host/repo.git#main" }, "repoURL must not have a query"},
		{"bidi override", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "https://host/repo‮git.exe" }, "printable ASCII"},
		{"zero-width space", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "https://gith​ub.com/org/repo.git" }, "printable ASCII"},
		{"non-ascii host", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "https://githüb.com/org/repo.git" }, "printable ASCII"},
		{"encoded newline", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "https://host/repo%0a.git" }, "must not encode control characters"},
		{"encoded NUL", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "https://host/repo%00.git" }, "must not encode control characters"},
		{"secret in another namespace", func(s *civ1alpha1.PipelineRunSpec) {
			s.GitSecretRef = &civ1alpha1.SecretReference{Name: "kube-system/x"}
		}, "gitSecretRef.name must be a DNS subdomain"},
		{"branch dotdot", func(s *civ1alpha1.PipelineRunSpec) { s.Branch = "main..evil" }, "branch must not contain '..'"},
		{"branch leading dash", func(s *civ1alpha1.PipelineRunSpec) { s.Branch = "--upload-pack=touch" }, "branch must be a git branch name"},
		{"branch space", func(s *civ1alpha1.PipelineRunSpec) { s.Branch = "my branch" }, "branch must be a git branch name"},
		{"branch control char", func(s *civ1alpha1.PipelineRunSpec) { s.Branch = "main\x07" }, "branch must be a git branch name"},
		{"branch .lock", func(s *civ1alpha1.PipelineRunSpec) { s.Branch = "main.lock" }, "branch must not end with"},
		{"branch reflog syntax", func(s *civ1alpha1.PipelineRunSpec) { s.Branch = "main@{1}" }, "branch must be a git branch name"},
		{"branch too long", func(s *civ1alpha1.PipelineRunSpec) { s.Branch = strings.Repeat("b", 256) }, "spec.branch: Too long"},
		{"short revision", func(s *civ1alpha1.PipelineRunSpec) { s.Revision = "abc1234" }, "revision must be a full commit SHA"},
		{"uppercase revision", func(s *civ1alpha1.PipelineRunSpec) { s.Revision = strings.Repeat("A", 40) }, "revision must be a full commit SHA"},
		{"absolute pipeline path", func(s *civ1alpha1.PipelineRunSpec) { s.PipelinePath = "/etc/flow-ci.yaml" }, "pipelinePath must be a relative path"},
		{"escaping pipeline path", func(s *civ1alpha1.PipelineRunSpec) { s.PipelinePath = "build/../../x.yaml" }, "pipelinePath must be a relative path"},
		{"zero timeout", func(s *civ1alpha1.PipelineRunSpec) { s.Timeout = &metav1.Duration{} }, "timeout must be positive"},
		{"huge timeout", func(s *civ1alpha1.PipelineRunSpec) { s.Timeout = &metav1.Duration{Duration: 200 * 3600e9} }, "timeout must be positive"},
		{"bad service account", func(s *civ1alpha1.PipelineRunSpec) { s.ServiceAccountName = "CI_Bot" }, "serviceAccountName must be a DNS subdomain"},
		{"empty secret name", func(s *civ1alpha1.PipelineRunSpec) { s.GitSecretRef = &civ1alpha1.SecretReference{} }, "spec.gitSecretRef.name"},
		{"bad access mode", func(s *civ1alpha1.PipelineRunSpec) {
			s.Workspace.AccessModes = []corev1.PersistentVolumeAccessMode{"ReadWriteEverywhere"}
		}, "Unsupported value"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := validRun(ns, fmt.Sprintf("run-%d", i))
			tc.mutate(&run.Spec)
			err := env.Client.Create(context.Background(), run)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				return
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want Invalid error containing %q, got %v", tc.wantErr, err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err.Error(), tc.wantErr)
			}
		})
	}
}

func TestCRDImmutableFields(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	cases := []struct {
		name    string
		mutate  func(*civ1alpha1.PipelineRunSpec)
		wantErr string
	}{
		{"repoURL", func(s *civ1alpha1.PipelineRunSpec) { s.RepoURL = "https://other.example.com/x.git" }, "repoURL is immutable"},
		{"branch", func(s *civ1alpha1.PipelineRunSpec) { s.Branch = "develop" }, "branch is immutable"},
		{"revision added", func(s *civ1alpha1.PipelineRunSpec) { s.Revision = strings.Repeat("b", 40) }, "revision is immutable"},
		{"pipelinePath", func(s *civ1alpha1.PipelineRunSpec) { s.PipelinePath = "other.yaml" }, "pipelinePath is immutable"},
		{"timeout", func(s *civ1alpha1.PipelineRunSpec) { s.Timeout = &metav1.Duration{Duration: 7200e9} }, "timeout is immutable"},
		{"gitSecretRef added", func(s *civ1alpha1.PipelineRunSpec) { s.GitSecretRef = &civ1alpha1.SecretReference{Name: "creds"} }, "gitSecretRef is immutable"},
		{"serviceAccountName added", func(s *civ1alpha1.PipelineRunSpec) { s.ServiceAccountName = "admin" }, "serviceAccountName is immutable"},
		{"workspace", func(s *civ1alpha1.PipelineRunSpec) { s.Workspace.StorageClassName = ptr.To("fast") }, "workspace.storageClassName is immutable"},
		{"workspace size", func(s *civ1alpha1.PipelineRunSpec) { q := resource.MustParse("5Gi"); s.Workspace.Size = &q }, "workspace.size is immutable"},
		{"retainOnFailure may change", func(s *civ1alpha1.PipelineRunSpec) { s.Workspace.RetainOnFailure = &metav1.Duration{Duration: 3600e9} }, ""},
		{"concurrencyPolicy", func(s *civ1alpha1.PipelineRunSpec) { s.ConcurrencyPolicy = civ1alpha1.ConcurrencyReplace }, "concurrencyPolicy is immutable"},
		{"cancel may be set", func(s *civ1alpha1.PipelineRunSpec) { s.Cancel = true }, ""},
		{"TTL may change", func(s *civ1alpha1.PipelineRunSpec) { s.TTLSecondsAfterFinished = ptr.To[int32](60) }, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := validRun(ns, fmt.Sprintf("imm-%d", i))
			if err := env.Client.Create(ctx, run); err != nil {
				t.Fatal(err)
			}
			tc.mutate(&run.Spec)
			err := env.Client.Update(ctx, run)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("want update accepted, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want error containing %q, got %v", tc.wantErr, err)
			}
		})
	}
}

// TestCRDPrinterColumns asks for the server-side Table that kubectl get renders.
func TestCRDPrinterColumns(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	run := validRun(ns, "columns")
	if err := env.Client.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	started := metav1.NewTime(time.Now().Add(-90 * time.Second))
	run.Status = civ1alpha1.PipelineRunStatus{Phase: civ1alpha1.PhaseRunning, Progress: "2/5", CurrentStep: "test", ShortCommit: "abcdef1", Branch: "main", StartTime: &started}
	if err := env.Client.Status().Update(ctx, run); err != nil {
		t.Fatal(err)
	}
	hc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
		strings.TrimSuffix(env.Config.Host, "/")+"/apis/ci.flowci.dev/v1alpha1/namespaces/"+ns+"/pipelineruns", nil)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		t.Fatalf("decoding table: %v\n%s", err, body)
	}
	var cols []string
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, fmt.Sprintf("%s/%d", c.Name, c.Priority))
	}
	wantCols := []string{"Name/0", "Phase/0", "Progress/0", "Step/0", "Commit/0", "Branch/0", "Started/0", "Age/0", "Completed/1", "Repo/1"}
	if diff := cmp.Diff(wantCols, cols); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("want 1 row, got %d", len(table.Rows))
	}
	cells := table.Rows[0].Cells
	want := []any{"columns", "Running", "2/5", "test", "abcdef1", "main"}
	if diff := cmp.Diff(want, cells[:6]); diff != "" {
		t.Errorf("cells (-want +got):\n%s", diff)
	}
	if cells[6] != "90s" && cells[6] != "91s" {
		t.Errorf("started cell = %v, want the start time as an age", cells[6])
	}
	if cells[8] != "<none>" && cells[8] != nil {
		t.Errorf("completed cell of an active run = %v", cells[8])
	}
	if cells[9] != "https://git.example.com/org/repo.git" {
		t.Errorf("repo cell = %v", cells[9])
	}
}

// TestCRDBoundsMatchAPI reads the installed CRD: the schema's literal bounds must be
// the Go constants the parser and the controller use.
func TestCRDBoundsMatchAPI(t *testing.T) {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: "pipelineruns.ci.flowci.dev"}, crd); err != nil {
		t.Fatal(err)
	}
	status := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"]
	st := status.Properties["steps"]
	if st.MaxItems == nil || *st.MaxItems != civ1alpha1.MaxSteps {
		t.Errorf("status.steps maxItems = %v, want v1alpha1.MaxSteps = %d", st.MaxItems, civ1alpha1.MaxSteps)
	}
	msg := st.Items.Schema.Properties["message"]
	if msg.MaxLength == nil || *msg.MaxLength != civ1alpha1.MaxMessageBytes {
		t.Errorf("status.steps[].message maxLength = %v, want v1alpha1.MaxMessageBytes = %d", msg.MaxLength, civ1alpha1.MaxMessageBytes)
	}
	var fields []string
	for _, f := range crd.Spec.Versions[0].SelectableFields {
		fields = append(fields, f.JSONPath)
	}
	if diff := cmp.Diff([]string{"." + civ1alpha1.FieldRepoURL, "." + civ1alpha1.FieldBranch}, fields); diff != "" {
		t.Errorf("selectableFields (-want +got):\n%s", diff)
	}
}
