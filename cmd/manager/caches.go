package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/flow-ci/flow-ci/internal/cacheagent"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/wsfiles"
)

// The environment of the clone and the saving step (internal/render): the caches, and
// the archive's address and certificate; the pod's bound token is a file.
const (
	envCaches        = "FLOWCI_CACHES"
	envArchiveURL    = "FLOWCI_ARCHIVE_URL"
	envArchiveCA     = "FLOWCI_ARCHIVE_CA"
	archiveTokenFile = "/var/run/flowci/archive/token"
	terminationLog   = "/dev/termination-log"
	// restoreTimeout bounds restoring every cache: a cache that does not arrive in time
	// is a miss.
	restoreTimeout = 5 * time.Minute
	// cloneBudget is the clone Job's deadline (render's cloneDeadlineSeconds, 10
	// minutes) less a margin for the rest of the clone to end in time.
	cloneBudget = 9 * time.Minute
)

// started is when this process started: the clone's deadline runs from about then.
var started = time.Now()

// restoreCaches restores the pipeline's caches after the clone's checkout, if it has
// any, and writes what it did as the termination message's last line. The default
// branch (the remote's HEAD), whose entries a branch without its own restores, costs
// one more ref advertisement. Nothing here fails the clone.
func restoreCaches(ctx context.Context, repo, workspace string, auth *gitsource.Auth, opts []gitsource.Option) {
	raw := os.Getenv(envCaches)
	if raw == "" {
		return
	}
	specs, err := cacheagent.Decode(raw)
	if err != nil {
		fmt.Fprintln(os.Stderr, "caches not restored:", err)
		return
	}
	c, err := cacheagent.NewClient(os.Getenv(envArchiveURL), os.Getenv(envArchiveCA), archiveTokenFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "caches not restored:", err)
		c = nil
	}
	// Within the clone Job's deadline, counted from this process's start (the clone's
	// own time included), and never more than restoreTimeout.
	deadline := started.Add(cloneBudget)
	if d := time.Now().Add(restoreTimeout); d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	def := ""
	if refs, err := gitsource.ListRefs(ctx, repo, auth, opts...); err == nil {
		def = refs.Default
	}
	reports := cacheagent.Restore(ctx, c, specs, workspace, def, wsfiles.DefaultUnpackLimits())
	for _, r := range reports {
		fmt.Printf("cache %s: key %s: restored %q from %q (%d bytes) %s\n", r.Name, r.Key, r.RestoredKey, r.RestoredFrom, r.RestoredBytes, r.Message)
	}
	_ = os.WriteFile(terminationLog, []byte(cacheagent.EncodeReports(reports)+"\n"), 0)
}

// runCaches is `flow-ci caches save`: the step the operator adds to a run that may save
// its caches packs each that changed and sends it to the archive.
func runCaches(args []string) int {
	fs := flag.NewFlagSet("caches", flag.ContinueOnError)
	ws := fs.String("workspace", "/workspace", "The run's workspace.")
	if len(args) == 0 || args[0] != "save" || fs.Parse(args[1:]) != nil {
		fmt.Fprintln(os.Stderr, "usage: flow-ci caches save [--workspace DIR]")
		return 2
	}
	specs, err := cacheagent.Decode(os.Getenv(envCaches))
	if err != nil {
		fmt.Fprintln(os.Stderr, "caches not saved:", err)
		return 0
	}
	if os.Getenv("FLOWCI_BRANCH") == "" {
		fmt.Println("caches not saved: the run builds a revision that is not on its branch")
		return 0
	}
	c, err := cacheagent.NewClient(os.Getenv(envArchiveURL), os.Getenv(envArchiveCA), archiveTokenFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "caches not saved:", err)
		return 0 // a run without its caches saved is not a failed run
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reports := cacheagent.Save(ctx, c, specs, filepath.Clean(*ws), wsfiles.DefaultPackLimits())
	for _, r := range reports {
		fmt.Printf("cache %s: key %s: saved %v (%d bytes) %s\n", r.Name, r.Key, r.Saved, r.SavedBytes, r.Message)
	}
	_ = os.WriteFile(terminationLog, []byte(cacheagent.EncodeReports(reports)+"\n"), 0)
	return 0
}
