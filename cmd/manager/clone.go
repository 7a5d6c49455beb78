package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5"

	"github.com/flow-ci/flow-ci/internal/gitsource"
)

// runClone is the clone Job's entry point: it checks out exactly one commit into the
// workspace and prepares the steps' HOME. It prints only sanitised errors, because its
// log tail ends up in the run's status.
func runClone(args []string) int {
	fs := flag.NewFlagSet("clone", flag.ContinueOnError)
	repo := fs.String("repo", "", "Repository URL.")
	branch := fs.String("branch", "", "Branch the commit was resolved from.")
	commit := fs.String("commit", "", "Full commit SHA to check out.")
	dest := fs.String("dest", "/workspace/src", "Directory to check the commit out into.")
	home := fs.String("home", "/workspace/home", "HOME for the steps, created writable.")
	secretDir := fs.String("secret-dir", "", "Directory with the git Secret's keys, if any.")
	timeout := fs.Duration("timeout", 10*time.Minute, "Time limit of the clone.")
	maxBytes := fs.Int64("max-bytes", 0, "Bytes the clone may read from the server (0: gitsource's default, 1 GiB).")
	maxFiles := fs.Int("max-files", 0, "Files the clone may check out (0: gitsource's default, 200,000).")
	nets := fs.String("allowed-networks", "", "Comma-separated CIDRs the egress policy would deny that the clone may reach.")
	verify := fs.Bool("verify", false, "Check that dest holds a checkout of the commit (a resumed run's workspace) instead of cloning.")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *verify {
		if err := verifyCheckout(*dest, *home, *commit); err != nil {
			fmt.Fprintln(os.Stderr, "the resumed workspace cannot be used:", err)
			return 1
		}
		fmt.Printf("the workspace holds the checkout of %s in %s\n", *commit, *dest)
		return 0
	}
	allowed, err := gitsource.ParseNetworks(strings.Split(*nets, ","))
	if err != nil {
		fmt.Fprintln(os.Stderr, "clone failed: --allowed-networks:", err)
		return 2
	}
	opts := []gitsource.Option{gitsource.WithTimeout(*timeout), gitsource.WithAllowedNetworks(allowed...), gitsource.WithMaxFiles(*maxFiles)}
	if *maxBytes > 0 {
		opts = append(opts, gitsource.WithBudget(gitsource.Budget{Bytes: *maxBytes, Pack: *maxBytes}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := clone(ctx, *repo, *branch, *commit, *dest, *home, *secretDir, opts); err != nil {
		fmt.Fprintln(os.Stderr, "clone failed:", err)
		return 1
	}
	fmt.Printf("checked out %s at %s into %s\n", *branch, *commit, *dest)
	return 0
}

func clone(ctx context.Context, repo, branch, commit, dest, home, secretDir string, opts []gitsource.Option) error {
	if repo == "" || commit == "" {
		return errors.New("--repo and --commit are required")
	}
	auth, err := readAuth(secretDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dest, 0o775); err != nil {
		return fmt.Errorf("creating %s: %w", dest, err)
	}
	if err := gitsource.Clone(ctx, repo, branch, commit, dest, auth, opts...); err != nil {
		return err
	}
	// Steps run as the same uid; group-writable for any fsGroup-only consumer.
	if err := os.MkdirAll(home, 0o775); err != nil {
		return err
	}
	restoreCaches(ctx, repo, filepath.Dir(dest), auth, opts)
	return nil
}

// readAuth loads a mounted Secret (one file per key) in Flux's key format.
func readAuth(dir string) (*gitsource.Auth, error) {
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the git secret: %w", err)
	}
	data := map[string][]byte{}
	for _, e := range entries {
		// Secret volumes hold ..data symlinks; keys are the plain names.
		if e.Name()[0] == '.' {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading git secret key %s: %w", e.Name(), err)
		}
		data[e.Name()] = b
	}
	return gitsource.AuthFromSecretData(data)
}

// verifyCheckout checks that a resumed run's workspace still holds what its clone left:
// the repository at dest with HEAD at commit, and the steps' HOME. A finally step that
// cleaned the workspace, or a step that moved HEAD, makes the resume stop here, with
// why, before any step runs on the wrong files.
func verifyCheckout(dest, home, commit string) error {
	repo, err := git.PlainOpen(dest)
	if err != nil {
		return fmt.Errorf("no checkout in %s (a finally step may have cleaned it): run the pipeline again in full", dest)
	}
	head, err := repo.Head()
	if err != nil {
		return fmt.Errorf("the checkout in %s has no HEAD: run the pipeline again in full", dest)
	}
	if got := head.Hash().String(); got != commit {
		return fmt.Errorf("the checkout in %s is at %s, not %s: run the pipeline again in full", dest, got, commit)
	}
	if st, err := os.Stat(home); err != nil || !st.IsDir() {
		return fmt.Errorf("the steps' HOME %s is gone: run the pipeline again in full", home)
	}
	return nil
}
