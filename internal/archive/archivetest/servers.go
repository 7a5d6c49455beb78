package archivetest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/flow-ci/flow-ci/internal/archive/blob"
)

// PostgresServer is a throwaway PostgreSQL (Debian's build, found by hack/postgres.sh)
// listening on 127.0.0.1 only, with its data in a temporary directory. Starting one
// takes an initdb and a start (measured 1.6 to 2 s on 2 cores); a suite that needs many
// databases starts one server and takes a Database per test.
type PostgresServer struct {
	bin      string // the directory holding initdb, postgres, pg_isready and psql
	port     int
	password string
	dbs      atomic.Int64
}

// Postgres starts a PostgreSQL for this test and returns the DSN of an empty database
// on it. Tests that need many databases use StartPostgres and Database instead.
func Postgres(t *testing.T) string {
	t.Helper()
	return StartPostgres(t).Database(t)
}

// StartPostgres starts a PostgreSQL that stops when t ends. PostgreSQL refuses to run
// as root, so under root (as in CI) initdb and the server run as the postgres system
// user that Debian's package creates, in a directory it owns.
func StartPostgres(t *testing.T) *PostgresServer {
	t.Helper()
	start := time.Now()
	bin := serverDir(t, "FLOWCI_POSTGRES", "postgres.sh")
	cred, uid, gid := postgresUser(t)
	// Not t.TempDir: its parent is private to root, and the postgres user must reach
	// the data directory.
	dir, err := os.MkdirTemp("", "flowci-postgres-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	p := &PostgresServer{bin: bin, port: freeLoopbackPort(t), password: randomToken(t, 16)}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(p.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(pwfile, uid, gid); err != nil {
		t.Fatal(err)
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "--pgdata", filepath.Join(dir, "data"),
		"--username", "postgres", "--pwfile", pwfile, "--auth-host", "scram-sha-256",
		"--auth-local", "peer", "--encoding", "UTF8", "--locale", "C", "--no-sync", "--no-instructions")
	initdb.Dir, initdb.SysProcAttr = dir, &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	// The server only ever holds test data, so it gives up durability for speed; its
	// unix socket stays in its own directory.
	srv := exec.Command(filepath.Join(bin, "postgres"), "-D", filepath.Join(dir, "data"),
		"-p", strconv.Itoa(p.port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	// SIGQUIT (immediate shutdown) when the thread that started it ends, as it does
	// when the test binary dies without cleaning up (a test timeout), so that no server
	// outlives the tests.
	srv.Dir, srv.SysProcAttr = dir, &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	exited := startLogged(t, "postgres", srv, filepath.Join(dir, "server.log"), syscall.SIGINT)
	p.waitReady(t, exited)
	t.Logf("postgres %s started on 127.0.0.1:%d in %s", bin, p.port, time.Since(start).Round(time.Millisecond))
	return p
}

// postgresUser is who runs initdb and the server: nil (this process's user) unless
// this process is root, then the postgres system user.
func postgresUser(t *testing.T) (cred *syscall.Credential, uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, os.Geteuid(), os.Getegid()
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("PostgreSQL refuses to run as root, and there is no postgres user to run it as (Debian's postgresql package creates one): %v", err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid
}

// waitReady polls pg_isready until the server accepts connections, failing early if
// the server exited.
func (p *PostgresServer) waitReady(t *testing.T, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := exec.Command(filepath.Join(p.bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port)).Run()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres did not accept connections on 127.0.0.1:%d: %v", p.port, err)
		}
		select {
		case <-exited:
			t.Fatalf("postgres exited before accepting connections")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Database creates an empty database and returns its DSN (a URL, as pgx and libpq
// read it). The database is dropped when t ends, after t's own cleanups, which close
// what t opened on it.
func (p *PostgresServer) Database(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("test_%d", p.dbs.Add(1))
	p.psql(t, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		// FORCE ends sessions a store left open, so the drop never waits on them.
		if out, err := p.psqlCmd("DROP DATABASE " + name + " WITH (FORCE)").CombinedOutput(); err != nil {
			t.Logf("drop database %s: %v\n%s", name, err, out)
		}
	})
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", p.password, p.port, name)
}

func (p *PostgresServer) psql(t *testing.T, sql string) {
	t.Helper()
	if out, err := p.psqlCmd(sql).CombinedOutput(); err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
}

// psqlCmd runs one statement as the superuser over TCP, as the tests' stores connect.
// -X skips any ~/.psqlrc.
func (p *PostgresServer) psqlCmd(sql string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "postgres", "-d", "postgres", "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+p.password)
	return cmd
}

// S3Server is a throwaway S3-compatible store: versitygw (built by hack/versitygw.sh)
// serving a temporary directory through its posix backend, on 127.0.0.1 only, with
// random root credentials.
type S3Server struct {
	endpoint  string
	accessKey string
	secretKey string
	client    *minio.Client
	buckets   atomic.Int64
}

// S3 starts an S3 store for this test and returns the settings of an empty bucket on
// it. Tests that need many buckets use StartS3 and Bucket instead.
func S3(t *testing.T) blob.S3Config {
	t.Helper()
	return StartS3(t).Bucket(t)
}

// StartS3 starts versitygw, stopped when t ends, and waits until it answers.
func StartS3(t *testing.T) *S3Server {
	t.Helper()
	bin := serverDir(t, "FLOWCI_S3SERVER", "versitygw.sh")
	dir := t.TempDir()
	s := &S3Server{
		endpoint:  net.JoinHostPort("127.0.0.1", strconv.Itoa(freeLoopbackPort(t))),
		accessKey: randomToken(t, 10),
		secretKey: randomToken(t, 20),
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(filepath.Join(bin, "versitygw"), "--port", s.endpoint,
		"--access", s.accessKey, "--secret", s.secretKey, "--health", "/health", "--quiet",
		"posix", filepath.Join(dir, "data"))
	// SIGTERM when the thread that started it ends, as for PostgreSQL above.
	srv.Dir, srv.SysProcAttr = dir, &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	exited := startLogged(t, "versitygw", srv, filepath.Join(dir, "server.log"), syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + s.endpoint + "/health")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not answer on %s: %v", s.endpoint, err)
		}
		select {
		case <-exited:
			t.Fatalf("versitygw exited before answering")
		case <-time.After(50 * time.Millisecond):
		}
	}
	client, err := minio.New(s.endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(s.accessKey, s.secretKey, ""),
		Region:       s3Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.client = client
	return s
}

// s3Region is versitygw's default region.
const s3Region = "us-east-1"

// Bucket creates an empty bucket and returns the settings that reach it. Buckets are
// left to the server's removal at the end of its test.
func (s *S3Server) Bucket(t *testing.T) blob.S3Config {
	t.Helper()
	name := fmt.Sprintf("test-%d", s.buckets.Add(1))
	if err := s.client.MakeBucket(t.Context(), name, minio.MakeBucketOptions{Region: s3Region}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return blob.S3Config{
		Endpoint:  s.endpoint,
		Bucket:    name,
		Region:    s3Region,
		AccessKey: s.accessKey,
		SecretKey: s.secretKey,
		Insecure:  true,
	}
}

// serverDir is a directory of server binaries: $env, else what hack/<script> prints
// (which builds the server, or says how to install it).
func serverDir(t *testing.T, env, script string) string {
	t.Helper()
	if d := os.Getenv(env); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	cmd := exec.Command(filepath.Join(root, "hack", script))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s is not set and hack/%s failed: %v\n%s", env, script, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// startLogged starts cmd with its output in logPath and returns a channel closed when
// it exits. At t's end it sends stop and waits (killing it after 10 s), and on failure
// logs the output's tail.
func startLogged(t *testing.T, name string, cmd *exec.Cmd, logPath string, stop os.Signal) <-chan struct{} {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(stop)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", name, tailLines(string(b), 40))
		}
	})
	return exited
}

// freeLoopbackPort is a TCP port on 127.0.0.1 that was free a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func randomToken(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
