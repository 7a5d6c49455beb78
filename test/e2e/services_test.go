//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// postgresImage is built by hack/local-cluster.sh from Debian's PostgreSQL
// (hack/images.sh postgres).
const postgresImage = "localhost/postgres:local"

const servicesPipeline = `name: Services
image: ` + postgresImage + `
steps:
- name: test
  services:
  - name: db
    image: ` + postgresImage + `
    command: [pg-service]
    ports: [5432]
    # pg-service listens on 127.0.0.1 only; a tcp check would dial the pod's IP.
    ready: {command: [pg_isready, -h, 127.0.0.1, -U, postgres]}
  commands:
  - psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -c 'create table t(x int)' -c 'insert into t values (42)' -At -c 'select x * 2 from t'
`

const deadServicePipeline = `name: Dead service
steps:
- name: test
  services:
  - name: dead
    image: localhost/busybox:local
    command: [sh, -c, "echo never-listening; sleep 3600"]
    ready: {tcp: 9999, timeout: 4s}
  commands:
  - echo the step ran
`

// TestServicesOnTheCluster: a step reaches its PostgreSQL service on localhost once it
// accepts connections, in a namespace that enforces Pod Security "restricted", and the
// service's log is its container's; a service that never gets ready fails its step with
// ServiceNotReady and the end of its log, without the step's commands running.
func TestServicesOnTheCluster(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": servicesPipeline}, gittest.HTTPOptions{})
	dead, deadSrv := gitServer(t, map[string]string{"build/flow-ci.yaml": deadServicePipeline}, gittest.HTTPOptions{})
	createRun(t, ns, "services", srv.RepoURL(repo), nil)
	createRun(t, ns, "dead-service", deadSrv.RepoURL(dead), nil)

	run := waitFinished(t, ns, "services", 5*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), toJSON(run.Status))
	job := "job/" + run.Status.Steps[0].JobName
	logs, err := kubectl("-n", ns, "logs", job)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(logs).To(ContainSubstring("\n84\n"), "the step's query ran against the service")
	svcLogs, err := kubectl("-n", ns, "logs", job, "-c", "service-db")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(svcLogs).To(ContainSubstring("database system is ready to accept connections"))

	bad := waitFinished(t, ns, "dead-service", 5*time.Minute)
	g.Expect(bad.Status.Phase).To(Equal(civ1alpha1.PhaseFailed), toJSON(bad.Status))
	st := bad.Status.Steps[0]
	g.Expect(st.Reason).To(Equal(civ1alpha1.ReasonServiceNotReady), toJSON(st))
	g.Expect(st.Message).To(ContainSubstring("service dead was not ready"))
	g.Expect(st.Message).To(ContainSubstring("its check was tcp 9999 within 4s"))
	g.Expect(st.Message).To(ContainSubstring("never-listening"), "the message ends with the service's log")
	g.Expect(strings.Contains(toJSON(bad.Status), "the step ran")).To(BeFalse(), "the step's container never started")
	waitWorkspaceReleased(t, ns, "services")

	// The archive keeps the service's log beside the step's.
	ctx := context.Background()
	token := reader(t, g, ns, "logs", []rbacv1.PolicyRule{runReader, logReader})
	g.Expect(k8s.Delete(ctx, getRun(g, ns, "services"))).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client2Key(ns, "services"), &civ1alpha1.PipelineRun{}))
	}).
		WithTimeout(2 * time.Minute).Should(BeTrue())
	c := archiveClient(t, g, token)
	rec, err := c.Get(ctx, ns, "services")
	g.Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, s := range rec.Streams {
		names = append(names, s.Name)
		if strings.HasPrefix(s.Name, "service-0-") && strings.HasSuffix(s.Name, "-db") {
			var got bytes.Buffer
			_, err := c.Log(ctx, ns, "services", s.Name, &got)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.String()).To(ContainSubstring("database system is ready to accept connections"))
			return
		}
	}
	t.Fatalf("no stored log of the service db among %q", names)
}
