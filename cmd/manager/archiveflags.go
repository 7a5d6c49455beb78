package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	archivectl "github.com/flow-ci/flow-ci/controllers/archive"
	"github.com/flow-ci/flow-ci/internal/archive/api"
	"github.com/flow-ci/flow-ci/internal/archive/blob"
)

// archiveOptions are the flags of `flow-ci archive`.
type archiveOptions struct {
	store      string // embedded or postgres
	dataDir    string
	pgURLFile  string
	s3         blob.S3Config
	limits     archivectl.Limits
	artifacts  api.Limits
	hold       time.Duration
	maxAge     time.Duration
	maxTotal   int64
	retainEach time.Duration
	standby    archivectl.StandbyOptions
	listen     string
	certFile   string
	keyFile    string
	tlsSecret  string
	caConfig   string
	service    string
	namespace  string

	metricsAddr    string
	pprofAddr      string
	probeAddr      string
	leaderElection bool
	releaseAll     bool
}

// byteFlag registers a quantity flag (512Ki, 10Gi, ...) into *v.
func byteFlag(fs *flag.FlagSet, v *int64, name, def, usage string) {
	q := resource.MustParse(def)
	*v = q.Value()
	fs.Func(name, fmt.Sprintf("%s (default %s)", usage, def), func(s string) error {
		q, err := resource.ParseQuantity(s)
		if err != nil {
			return err
		}
		*v = q.Value()
		return nil
	})
}

func parseArchiveFlags(args []string) (*archiveOptions, *zap.Options, error) {
	o := &archiveOptions{}
	var chunk int64
	fs := newArchiveFlagSet(o, &chunk)
	zo := &zap.Options{}
	zo.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	o.limits.Chunk = int(min(max(chunk, 4<<10), 64<<20))
	return o, zo, o.check()
}

// newArchiveFlagSet registers the archive's flags into o (and the chunk size).
func newArchiveFlagSet(o *archiveOptions, chunk *int64) *flag.FlagSet {
	fs := flag.NewFlagSet("archive", flag.ContinueOnError)
	fs.StringVar(&o.store, "store", "embedded", "Where records and logs go: embedded (SQLite and compressed files under --data-dir) or postgres (PostgreSQL and an S3-compatible object store).")
	fs.StringVar(&o.dataDir, "data-dir", "/var/lib/flow-ci-archive", "The embedded store's directory (one volume).")
	fs.StringVar(&o.pgURLFile, "postgres-url-file", "", "A file holding the PostgreSQL connection URL, mounted from a Secret (--store=postgres); never a flag, so it stays out of the pod spec.")
	fs.StringVar(&o.s3.Endpoint, "s3-endpoint", "", "The S3-compatible endpoint, host:port (--store=postgres).")
	fs.StringVar(&o.s3.Bucket, "s3-bucket", "flow-ci-archive", "The bucket of the logs.")
	fs.StringVar(&o.s3.Region, "s3-region", "us-east-1", "The bucket's region.")
	fs.StringVar(&o.s3.Prefix, "s3-prefix", "", "A key prefix inside the bucket.")
	fs.BoolVar(&o.s3.Insecure, "s3-insecure", false, "Plain HTTP to the object store (a sidecar or a test server only).")
	fs.StringVar(&o.s3.CAFile, "s3-ca-file", "", "CA certificates for the object store's TLS.")
	byteFlag(fs, &o.limits.MaxLine, "max-line-bytes", "256Ki", "A log line longer than this is cut, with a marker.")
	byteFlag(fs, &o.limits.MaxLog, "max-log-bytes", "256Mi", "One container's stored log is cut at this size, with a marker.")
	byteFlag(fs, &o.artifacts.FileBytes, "max-artifact-bytes", "512Mi", "One artifact a step keeps; a larger file is refused with the reason in the step's log and status.")
	byteFlag(fs, &o.artifacts.RunBytes, "max-run-artifact-bytes", "2Gi", "One run's artifacts in all.")
	byteFlag(fs, &o.artifacts.NamespaceBytes, "max-namespace-artifact-bytes", "4Gi", "One namespace's artifacts in all; they go with their runs' records (--max-age and the namespace's records' limit).")
	byteFlag(fs, &o.artifacts.CacheBytes, "max-cache-bytes", "2Gi", "One saved cache entry, compressed; a larger one is refused and the previous entry stays.")
	byteFlag(fs, &o.artifacts.NamespaceCacheBytes, "max-namespace-cache-bytes", "4Gi", "One namespace's committed caches: past it, the least recently used entries are evicted; pending ones may hold as much again.")
	byteFlag(fs, &o.limits.MaxNamespace, "max-namespace-bytes", "10Gi", "What one namespace's records and logs may occupy: new logs are cut past it, and retention deletes its oldest records down to it.")
	byteFlag(fs, &o.maxTotal, "max-total-bytes", "100Gi", "What the whole archive may occupy: retention deletes the oldest records down to it.")
	fs.DurationVar(&o.maxAge, "max-age", 30*24*time.Hour, "Retention deletes records of runs created longer ago; 0 keeps them.")
	fs.DurationVar(&o.retainEach, "retention-interval", 10*time.Minute, "How often retention runs.")
	fs.DurationVar(&o.hold, "hold", 5*time.Minute, "How long a deleted run waits for its record and logs before it goes without them (the record says what is missing).")
	byteFlag(fs, chunk, "chunk-bytes", "256Ki", "Buffered log lines are stored at this size...")
	fs.DurationVar(&o.limits.Flush, "flush-interval", time.Second, "...or after this long.")
	fs.DurationVar(&o.standby.Window, "standby-window", 30*time.Second, "A replica that does not lead reads the same logs as the leader and keeps this much of each, so that when it takes over it stores what the leader had not, even past a kubelet rotation; 0 disables it.")
	byteFlag(fs, &o.standby.Budget, "standby-bytes", "128Mi", "What a standby replica keeps of all logs at most.")
	fs.StringVar(&o.listen, "listen", ":8443", "The HTTPS address readers use.")
	fs.StringVar(&o.certFile, "tls-cert-file", "", "The serving certificate; without it the archive makes one and keeps it in --tls-secret.")
	fs.StringVar(&o.keyFile, "tls-key-file", "", "The serving certificate's key.")
	fs.StringVar(&o.tlsSecret, "tls-secret", "flow-ci-archive-tls", "The Secret, in the archive's namespace, that keeps the certificate it made.")
	fs.StringVar(&o.caConfig, "ca-configmap", "flow-ci-archive-ca", "The ConfigMap, in the archive's namespace, where readers find the certificate to trust (ca.crt).")
	fs.StringVar(&o.service, "service", "flow-ci-archive", "The archive's Service, named in the certificate it makes.")
	fs.StringVar(&o.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "The archive's own namespace (env POD_NAMESPACE).")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "The metrics endpoint; 0 disables it.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "", "Address of the Go profiler's endpoints (/debug/pprof); empty disables them.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "The health probes' address.")
	fs.BoolVar(&o.leaderElection, "leader-elect", false, "One replica streams and records at a time; every replica serves reads.")
	fs.BoolVar(&o.releaseAll, "release-all", false, "Remove the archive's finalizer from every run and exit (before uninstalling the archive).")
	return fs
}

func (o *archiveOptions) check() error {
	switch {
	case o.store != "embedded" && o.store != "postgres":
		return fmt.Errorf("--store: %q is neither embedded nor postgres", o.store)
	case o.store == "postgres" && (o.pgURLFile == "" || o.s3.Endpoint == ""):
		return errors.New("--store=postgres needs --postgres-url-file and --s3-endpoint")
	case (o.certFile == "") != (o.keyFile == ""):
		return errors.New("--tls-cert-file and --tls-key-file go together")
	case o.namespace == "" && !o.releaseAll:
		return errors.New("--namespace (or POD_NAMESPACE) is required")
	case o.limits.MaxLine <= 0 || o.limits.MaxLog <= 0:
		return errors.New("--max-line-bytes and --max-log-bytes must be positive")
	case o.limits.Flush <= 0:
		return errors.New("--flush-interval must be positive")
	case o.standby.Window < 0 || o.standby.Window > 0 && o.standby.Budget < 1<<20:
		return errors.New("--standby-window must not be negative, and --standby-bytes at least 1Mi")
	}
	o.s3.Endpoint = strings.TrimPrefix(strings.TrimPrefix(o.s3.Endpoint, "https://"), "http://")
	return nil
}
