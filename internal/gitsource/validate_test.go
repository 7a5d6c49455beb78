package gitsource

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateURL(t *testing.T) {
	t.Parallel()
	valid := []string{
		"https://github.com/org/repo.git",
		"HTTPS://GitHub.com/org/repo",
		"https://140.82.121.4/org/repo.git",
		"https://[2606:4700::1]/repo.git",
		"ssh://git@github.com/org/repo.git",
		"ssh://git@[2606:4700::1]:2222/repo.git",
		"ssh://github.com:22/org/repo.git",
		"git@github.com:org/repo.git",
		"https://gitlab.example.com/group/sub/repo",
		"https://github.com/org/repo%20name.git",
	}
	for _, u := range valid {
		if err := ValidateURL(u); err != nil {
			t.Errorf("ValidateURL(%q) = %v, want nil", u, err)
		}
	}

	invalid := map[string]string{
		"":                                      "empty",
		"file:///tmp/repo":                      "scheme",
		"git://github.com/org/repo":             "scheme",
		"ftp://host/repo":                       "scheme",
		"ext::sh -c touch% /tmp/pwned":          "printable ASCII",
		"ext::foo":                              "must be an",
		"/tmp/repo":                             "must be an",
		"./repo":                                "must be an",
		"repo":                                  "must be an",
		"C:\\repo":                              "must be an",
		"github.com:org/repo":                   "must be an",
		"-oProxyCommand=x":                      "start with '-'",
		"ssh://-oProxyCommand=x/repo":           "invalid host",
		"ssh://-user@host/repo":                 "user must not",
		"-git@host:repo":                        "start with '-'",
		"git@-host:repo":                        "invalid host",
		"git@host:-repo":                        "must not start with '-'",
		"git@host:":                             "must be an",
		"https://user:hunter2@github.com/x.git": "credentials",
		"https://ghp_token123@github.com/x.git": "credentials",
		"https://ghp_token123:@github.com/x":    "credentials",
		"ssh://git:hunter2@github.com/x.git":    "credentials",
		"https://github.com/x.git\n":            "printable ASCII",
		"https://github.com/x y.git":            "printable ASCII",
		"https://github.com/x\x00.git":          "printable ASCII",
		"https://github.com/x\u202e.git":        "printable ASCII",
		"https://github.com/x\u200b.git":        "printable ASCII",
		"https://gith\u00fcb.com/x.git":         "printable ASCII",
		"https://github.com/x%00.git":           "control",
		"https://github.com/x%0a.git":           "control",
		"https://github.com/x%7f.git":           "control",
		"https://github.com/x.git?ref=main":     "query",
		"https://github.com/x.git?access_token=ghp_token123": "query",
		"https://github.com/x.git?":                          "query",
		"https://github.com/x.git#main":                      "fragment",
		"https://github.com":                                 "no repository path",
		"https://github.com/":                                "no repository path",
		"https:///repo.git":                                  "no host",
		"https://host:99999/x.git":                           "port",
		"https://" + strings.Repeat("a", 2050):               "longer",
	}
	for u, reason := range invalid {
		err := ValidateURL(u)
		if !errors.Is(err, ErrInvalidURL) || !IsPermanent(err) {
			t.Errorf("ValidateURL(%q) = %v, want ErrInvalidURL", u, err)
			continue
		}
		if !strings.Contains(err.Error(), reason) {
			t.Errorf("ValidateURL(%q) = %q, want reason containing %q", u, err, reason)
		}
		for _, secret := range []string{"hunter2", "ghp_token123"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("ValidateURL(%q) error leaks %q", u, secret)
			}
		}
	}

	// IP literals are checked against the egress policy.
	denied := []string{
		"http://127.0.0.1:8080/repo.git", "ssh://git@[::1]:2222/repo.git", "git@[::1]:org/repo.git",
		"http://169.254.169.254/latest/meta-data", "http://[fe80::1]/repo.git", "http://[fd00:ec2::254]/repo.git",
		"http://[::ffff:169.254.169.254]/r.git", "http://[::169.254.169.254]/r.git", "ssh://git@169.254.0.1/repo.git",
		"git@169.254.169.254:repo.git", "https://10.1.2.3/x.git", "https://100.100.100.200/x.git", "https://[2001:db8::1]/repo.git",
	}
	for _, u := range denied {
		if err := ValidateURL(u); !errors.Is(err, ErrAddressNotAllowed) || !IsPermanent(err) {
			t.Errorf("ValidateURL(%q) = %v, want ErrAddressNotAllowed", u, err)
		}
	}
	if err := ValidateURL("http://127.0.0.1:8080/repo.git", loopback); err != nil {
		t.Errorf("loopback allowed: %v", err)
	}
}

func TestValidateBranch(t *testing.T) {
	t.Parallel()
	for _, b := range []string{"main", "feature/foo", "release-1.0", "v1.2.3", "a.b", "a@b", "user/x_y", "ü-branch"} {
		if err := ValidateBranch(b); err != nil {
			t.Errorf("ValidateBranch(%q) = %v, want nil", b, err)
		}
	}
	invalid := []string{
		"", "--upload-pack=touch /tmp/x", "-x", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*",
		"a[b", "a\\b", "a/", "/a", "a.lock", "a/b.lock/c", "a.", ".a", "a/.b", "a@{1}",
		"a//b", "@", "HEAD", "a\x00b", "a\tb", "a\x7f", strings.Repeat("a", 256),
	}
	for _, b := range invalid {
		if err := ValidateBranch(b); !errors.Is(err, ErrInvalidBranch) || !IsPermanent(err) {
			t.Errorf("ValidateBranch(%q) = %v, want ErrInvalidBranch", b, err)
		}
	}
}

func TestValidateRevision(t *testing.T) {
	t.Parallel()
	sha1 := "0123456789abcdef0123456789abcdef01234567"
	sha256 := strings.Repeat("ab", 32)
	for in, want := range map[string]string{sha1: sha1, strings.ToUpper(sha1): sha1, sha256: sha256} {
		if got, err := ValidateRevision(in); err != nil || got != want {
			t.Errorf("ValidateRevision(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "HEAD", "main", sha1[:39], sha1 + "0", strings.Repeat("g", 40), "-" + sha1[1:]} {
		if _, err := ValidateRevision(in); !errors.Is(err, ErrInvalidRevision) {
			t.Errorf("ValidateRevision(%q) = %v, want ErrInvalidRevision", in, err)
		}
	}
}

func TestValidatePath(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"build/flow-ci.yaml", "a", ".flow-ci.yaml", "a/b/c.yaml", "a..b"} {
		if err := validatePath(p); err != nil {
			t.Errorf("validatePath(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"", ".", "..", "/etc/passwd", "../x", "a/../../x", "a/../b", "./a", "a//b", "a/", "a\\b", "a\x00"} {
		if err := validatePath(p); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("validatePath(%q) = %v, want ErrInvalidPath", p, err)
		}
	}
}
