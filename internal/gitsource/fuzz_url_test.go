package gitsource

import (
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// repoURLRules compiles the CRD's CEL rules for spec.repoURL, as installed.
func repoURLRules(tb testing.TB) []cel.Program {
	tb.Helper()
	raw, err := os.ReadFile("../../config/crd/bases/ci.flowci.dev_pipelineruns.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(raw, crd); err != nil {
		tb.Fatal(err)
	}
	field := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["repoURL"]
	env, err := cel.NewEnv(cel.Variable("self", cel.StringType))
	if err != nil {
		tb.Fatal(err)
	}
	var progs []cel.Program
	for _, rule := range field.XValidations {
		ast, iss := env.Compile(rule.Rule)
		if iss.Err() != nil {
			tb.Fatalf("rule %q: %v", rule.Rule, iss.Err())
		}
		p, err := env.Program(ast)
		if err != nil {
			tb.Fatal(err)
		}
		progs = append(progs, p)
	}
	if len(progs) < 5 {
		tb.Fatalf("found %d repoURL rules in the CRD", len(progs))
	}
	return progs
}

func celAccepts(tb testing.TB, progs []cel.Program, u string) bool {
	if len(u) < 1 || len(u) > 2048 {
		return false
	}
	for _, p := range progs {
		out, _, err := p.Eval(map[string]any{"self": u})
		if err != nil {
			tb.Fatalf("evaluating a rule on %q: %v", u, err)
		}
		if out.Value() != true {
			return false
		}
	}
	return true
}

var percentControl = regexp.MustCompile(`%([01][0-9A-Fa-f]|7[Ff])`)

// unsafe says what a URL must never carry past either layer.
func unsafe(u string) string {
	switch {
	case strings.IndexFunc(u, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		return "a character outside printable ASCII"
	case strings.ContainsAny(u, "?#"):
		return "a query or fragment"
	case percentControl.MatchString(u):
		return "an encoded control character"
	}
	if p, err := url.Parse(u); err == nil && p.User != nil {
		if _, pass := p.User.Password(); pass || !strings.EqualFold(p.Scheme, "ssh") {
			return "credentials"
		}
	}
	return ""
}

// FuzzValidateURL keeps the two layers of URL validation consistent: what the
// controller accepts the CRD accepts too (CEL is the looser first layer: it cannot
// resolve names or check ports), neither lets a URL with credentials, a query, control
// or non-ASCII characters through, and the controller refuses every IP literal the
// egress policy denies.
func FuzzValidateURL(f *testing.F) {
	progs := repoURLRules(f)
	for _, s := range []string{
		"https://github.com/org/repo.git", "git@github.com:org/repo.git", "ssh://git@host:2222/r.git",
		"https://user:pw@host/r.git", "https://tok@host/r.git", "ssh://git:pw@host/r", "https://host/r?x=1",
		"https://host/r%0a", "https://h\u200bost/r", "http://169.254.169.254/x", "http://[::169.254.169.254]/x",
		"HTTPS://Host/R.git", "http://127.0.0.1:8080/r.git", "ext::sh -c x", "-oProxyCommand=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		if len(u) > 512 {
			return // both layers refuse more than 2048 bytes outright; keep executions fast
		}
		ctrl := ValidateURL(u)
		permissive := ValidateURL(u, WithAllowedNetworks(everywhere...))
		inCRD := celAccepts(t, progs, u)
		if permissive == nil && !inCRD {
			t.Errorf("the controller accepts %q, the CRD refuses it", u)
		}
		for layer, ok := range map[string]bool{"CRD": inCRD, "controller": permissive == nil} {
			if why := unsafe(u); ok && why != "" {
				t.Errorf("the %s accepts %q, which carries %s", layer, u, why)
			}
		}
		if ctrl == nil && permissive != nil {
			t.Errorf("the default policy accepts %q that a permissive one refuses: %v", u, permissive)
		}
	})
}
