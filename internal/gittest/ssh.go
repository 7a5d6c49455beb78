package gittest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHServer serves the bare repositories under Root to `git-upload-pack`
// exec requests, running the real git binary. It accepts public-key auth for
// one generated client key.
type SSHServer struct {
	Addr string // "127.0.0.1:port"
	Root string
	// Identity is the client private key (PEM, unencrypted) the server accepts.
	Identity []byte
	// KnownHosts is a known_hosts line with the server's host key.
	KnownHosts []byte
	// WrongKnownHosts names the same host with a different key.
	WrongKnownHosts []byte

	clientKey ed25519.PrivateKey
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
}

// NewSSHServer starts an SSH git server on loopback exporting root; it is
// closed when the test ends.
func NewSSHServer(t testing.TB, root string) *SSHServer {
	t.Helper()
	hostSigner := newSigner(t)
	clientPub, clientKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate client key: %v", err)
	}
	authorized, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatalf("client public key: %v", err)
	}

	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown public key")
		},
	}
	cfg.AddHostKey(hostSigner)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &SSHServer{
		Addr:      ln.Addr().String(),
		Root:      root,
		clientKey: clientKey,
		conns:     map[net.Conn]struct{}{},
	}
	s.Identity = s.EncryptedIdentity(t, "")
	host := knownhosts.Normalize(s.Addr)
	s.KnownHosts = []byte(knownhosts.Line([]string{host}, hostSigner.PublicKey()) + "\n")
	s.WrongKnownHosts = []byte(knownhosts.Line([]string{host}, newSigner(t).PublicKey()) + "\n")

	go s.serve(ln, cfg)
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// RepoURL is the ssh:// clone URL of r on this server.
func (s *SSHServer) RepoURL(r *Repo) string { return "ssh://git@" + s.Addr + "/" + r.Name }

// EncryptedIdentity returns the accepted client key as PEM encrypted with
// passphrase (unencrypted when passphrase is empty).
func (s *SSHServer) EncryptedIdentity(t testing.TB, passphrase string) []byte {
	t.Helper()
	var (
		block *pem.Block
		err   error
	)
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(s.clientKey, "")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(s.clientKey, "", []byte(passphrase))
	}
	if err != nil {
		t.Fatalf("marshal client key: %v", err)
	}
	return pem.EncodeToMemory(block)
}

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatalf("signer: %v", err)
	}
	return signer
}

func (s *SSHServer) serve(ln net.Listener, cfg *ssh.ServerConfig) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			s.handleConn(c, cfg)
		}()
	}
}

func (s *SSHServer) handleConn(c net.Conn, cfg *ssh.ServerConfig) {
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handleSession(ch, chReqs)
		}()
	}
}

func (s *SSHServer) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "env":
			_ = req.Reply(true, nil)
		case "exec":
			var payload struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			dir, ok := s.repoDir(payload.Command)
			if !ok {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			code := runUploadPack(ch, dir)
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{code}))
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// repoDir parses "git-upload-pack '<path>'" into a directory under Root.
func (s *SSHServer) repoDir(command string) (string, bool) {
	arg, ok := strings.CutPrefix(command, "git-upload-pack ")
	if !ok || len(arg) < 2 || arg[0] != '\'' || arg[len(arg)-1] != '\'' {
		return "", false
	}
	p := arg[1 : len(arg)-1]
	if strings.Contains(p, "'") {
		return "", false
	}
	return filepath.Join(s.Root, filepath.Clean("/"+p)), true
}

func runUploadPack(ch ssh.Channel, dir string) uint32 {
	// Answer a missing repository the way git servers do, rather than
	// letting git search parent directories.
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		fmt.Fprintf(ch.Stderr(), "fatal: '%s' does not appear to be a git repository\n", dir)
		return 128
	}
	cmd := exec.Command("git", "upload-pack", "--strict", dir)
	cmd.Env = Env()
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 128
	}
	if err := cmd.Start(); err != nil {
		return 127
	}
	// Not cmd.Stdin: Wait would block on the copy until the client hangs up.
	go func() {
		_, _ = io.Copy(stdin, ch)
		_ = stdin.Close()
	}()
	if err := cmd.Wait(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return uint32(exitErr.ExitCode())
		}
		return 1
	}
	return 0
}
