// Package gitserver serves bare repositories over smart HTTP with the real
// `git http-backend`. Tests use it through internal/gittest; the demo's git server
// (hack/demo-gitserver) uses it directly, without linking any test code.
package gitserver

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// NewHandler serves every bare repository under root with the real `git http-backend`
// behind net/http/cgi.
func NewHandler(root string) (http.Handler, error) {
	dir, err := execPath()
	if err != nil {
		return nil, err
	}
	return &cgi.Handler{
		Path: filepath.Join(dir, "git-http-backend"),
		Root: "/",
		Env: append(Env(),
			"GIT_PROJECT_ROOT="+root,
			"GIT_HTTP_EXPORT_ALL=1",
		),
		// Refusals such as "not our ref" are part of what tests provoke.
		Stderr: io.Discard,
	}, nil
}

// Env is the environment for git processes: the current one without user and system
// configuration and prompts, so git behaves the same on every machine.
func Env() []string {
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
	)
}

var (
	execPathOnce sync.Once
	execPathDir  string
	execPathErr  error
)

// execPath is `git --exec-path`, where git-http-backend lives.
func execPath() (string, error) {
	execPathOnce.Do(func() {
		out, err := exec.Command("git", "--exec-path").Output()
		execPathDir, execPathErr = strings.TrimSpace(string(out)), err
	})
	if execPathErr != nil {
		return "", fmt.Errorf("git --exec-path: %w", execPathErr)
	}
	return execPathDir, nil
}
