// Package forgetest runs a real forge for tests: Gitea, built from the Go module proxy by
// hack/gitea.sh, with SQLite in a temporary directory, an admin user and an API token.
// Tests push to its repositories over HTTP and read back the commit statuses flow-ci
// posted.
package forgetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// User and Password are the forge's admin account.
const (
	User     = "flowci"
	Password = "flowci-test-password-1"
)

// Gitea is a running Gitea.
type Gitea struct {
	// URL is the forge's root, e.g. http://127.0.0.1:40123, and the API base that
	// flow-ci's reports use.
	URL string
	// Token is an API token of User that may write repositories.
	Token string
}

// Status is a commit status as Gitea's API returns it.
type Status struct {
	ID          int64  `json:"id"`
	State       string `json:"status"`
	Context     string `json:"context"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url"`
}

// Dir is the Gitea build (hack/gitea.sh): $FLOWCI_GITEA, or built and cached under bin/.
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("FLOWCI_GITEA"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	out, err := exec.Command(filepath.Join(root, "hack", "gitea.sh")).Output()
	if err != nil {
		t.Fatalf("hack/gitea.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// StartGitea starts Gitea listening on host (a free port), until the test ends.
func StartGitea(t testing.TB, host string) *Gitea {
	t.Helper()
	dir := Dir(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	_ = ln.Close()
	work := t.TempDir()
	base := fmt.Sprintf("http://%s", net.JoinHostPort(host, fmt.Sprint(addr.Port)))
	ini := filepath.Join(work, "app.ini")
	config := fmt.Sprintf(appINI, work, host, addr.Port, base, dir)
	if err := os.WriteFile(ini, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	gitea := func(args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(dir, "gitea"), append(args, "--config", ini)...)
		// The tests run as root in CI; Gitea refuses that unless told. Gitea gives git a
		// HOME of its own and writes its global config there: an inherited
		// GIT_CONFIG_GLOBAL=/dev/null would have git, as root, replace /dev/null itself.
		cmd.Env = append(giteaEnv(), "GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true", "HOME="+work)
		cmd.Dir = work
		return cmd
	}
	for _, args := range [][]string{
		{"migrate"},
		{"admin", "user", "create", "--username", User, "--password", Password, "--email", "ci@flowci.dev", "--admin", "--must-change-password=false"},
	} {
		if out, err := gitea(args...).CombinedOutput(); err != nil {
			t.Fatalf("gitea %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	web := gitea("web")
	logFile, err := os.Create(filepath.Join(work, "web.log"))
	if err != nil {
		t.Fatal(err)
	}
	web.Stdout, web.Stderr = logFile, logFile
	if err := web.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = web.Process.Kill()
		_ = web.Wait()
		_ = logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("gitea log:\n%s", tail(string(b), 40))
		}
	})
	g := &Gitea{URL: base}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/api/v1/version")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gitea did not answer on %s: %v", base, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var tok struct {
		SHA1 string `json:"sha1"`
	}
	g.call(t, http.MethodPost, "/api/v1/users/"+User+"/tokens", true,
		map[string]any{"name": "flow-ci", "scopes": []string{"write:repository", "write:user"}}, &tok)
	g.Token = tok.SHA1
	return g
}

// CreateRepo creates an empty public repository and returns its clone URL.
func (g *Gitea) CreateRepo(t testing.TB, name string) string {
	t.Helper()
	g.call(t, http.MethodPost, "/api/v1/user/repos", false, map[string]any{"name": name}, nil)
	return g.URL + "/" + User + "/" + name + ".git"
}

// PushURL is the clone URL with the admin's credentials, for git push.
func (g *Gitea) PushURL(repo string) string {
	return strings.Replace(g.URL, "://", "://"+User+":"+Password+"@", 1) + "/" + User + "/" + repo + ".git"
}

// Statuses lists the statuses of commit in repo, oldest first.
func (g *Gitea) Statuses(t testing.TB, repo, commit string) []Status {
	t.Helper()
	var out []Status
	g.call(t, http.MethodGet, "/api/v1/repos/"+User+"/"+repo+"/commits/"+commit+"/statuses?limit=50", false, nil, &out)
	// Gitea orders them by time, to the second; the ID is the order they were posted in.
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (g *Gitea) call(t testing.TB, method, path string, basic bool, body, out any) {
	t.Helper()
	if basic {
		g.callAs(t, method, path, func(r *http.Request) { r.SetBasicAuth(User, Password) }, body, out)
		return
	}
	g.callAs(t, method, path, func(r *http.Request) { r.Header.Set("Authorization", "token "+g.Token) }, body, out)
}

func (g *Gitea) callAs(t testing.TB, method, path string, auth func(*http.Request), body, out any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, g.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	auth(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("gitea %s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		t.Fatalf("gitea %s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("gitea %s %s: %v", method, path, err)
		}
	}
}

// giteaEnv is the environment without any GIT_ variable.
func giteaEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return env
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// appINI: SQLite, no SSH, no mail, no indexer, no Actions, no cron, offline; the work
// path, host, port, root URL and the build's static path are filled in.
const appINI = `APP_NAME = flow-ci test forge
RUN_MODE = prod
WORK_PATH = %[1]s
[server]
HTTP_ADDR = %[2]s
HTTP_PORT = %[3]d
ROOT_URL = %[4]s/
DISABLE_SSH = true
OFFLINE_MODE = true
LFS_START_SERVER = false
STATIC_ROOT_PATH = %[5]s
APP_DATA_PATH = %[1]s/data
[database]
DB_TYPE = sqlite3
PATH = %[1]s/data/gitea.db
[repository]
ROOT = %[1]s/repos
[security]
INSTALL_LOCK = true
SECRET_KEY = flow-ci-test-forge-secret-key-0123456789
[service]
DISABLE_REGISTRATION = true
[log]
MODE = console
LEVEL = warn
[indexer]
REPO_INDEXER_ENABLED = false
[actions]
ENABLED = false
[cron]
ENABLED = false
[mailer]
ENABLED = false
[oauth2]
ENABLED = false
`
