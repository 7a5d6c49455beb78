package wsfiles

import (
	"strings"
	"testing"
)

func TestValidatePattern(t *testing.T) {
	tests := []struct {
		pattern string
		wantErr string // a part of the message; "" for valid
	}{
		{".", ""},
		{"dist", ""},
		{"dist/*.tar.gz", ""},
		{"**/*.xml", ""},
		{"build/**/reports/*.html", ""},
		{"a/[ab]?.txt", ""},
		{`a/\*.txt`, "backslash"}, // no escapes either: "?" matches the "*"
		{"", "empty pattern"},
		{"/etc/passwd", "is absolute"},
		{"..", `".." segment`},
		{"../x", `".." segment`},
		{"a/../../x", `".." segment`},
		{"a/..", `".." segment`},
		{"./a", `"." segment`},
		{"a/./b", `"." segment`},
		{"a/.", `"." segment`},
		{`a\b`, "backslash"},
		{"a\x00b", "NUL"},
		{"a//b", "empty segment"},
		{"dist/", "ends with '/'"},
		{"!dist", "negation"},
		{"a/[b", "malformed glob"},
		{strings.Repeat("a", 513), "longer than 512 bytes"},
		{strings.Repeat("a", 512), ""},
	}
	for _, tt := range tests {
		err := ValidatePattern(tt.pattern)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ValidatePattern(%q) = %v, want nil", tt.pattern, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ValidatePattern(%q) = %v, want an error saying %q", tt.pattern, err, tt.wantErr)
		case err != nil && len(err.Error()) > 600:
			t.Errorf("ValidatePattern(%q): message of %d bytes is not short", tt.pattern, len(err.Error()))
		}
	}
}

func TestValidateDirRefusesGlobs(t *testing.T) {
	for _, d := range []string{"a/*", "?", "[x]", "../a", "/a"} {
		if validateDir(d) == nil {
			t.Errorf("validateDir(%q) = nil, want an error", d)
		}
	}
	for _, d := range []string{".", "node_modules", "a/b/c", ".cache/go-build"} {
		if err := validateDir(d); err != nil {
			t.Errorf("validateDir(%q) = %v", d, err)
		}
	}
}

func TestMayMatchBelow(t *testing.T) {
	tests := []struct {
		pattern, dir string
		want         bool
	}{
		{"dist/*.gz", "dist", true},
		{"dist/*.gz", "src", false},
		{"dist/*.gz", "dist/sub", false},
		{"*/out/*.log", "a", true},
		{"*/out/*.log", "a/out", true},
		{"*/out/*.log", "a/in", false},
		{"**/*.xml", "a/b/c", true},
		{"a/**/x", "b", false},
		{"a/**/x", "a/b/c", true},
	}
	for _, tt := range tests {
		if got := mayMatchBelow(tt.pattern, tt.dir); got != tt.want {
			t.Errorf("mayMatchBelow(%q, %q) = %v, want %v", tt.pattern, tt.dir, got, tt.want)
		}
	}
}

func TestLinkStaysInside(t *testing.T) {
	tests := []struct {
		name, target string
		want         bool
	}{
		{"l", "x", true},
		{"l", ".", true},
		{"l", "./x/y", true},
		{"a/l", "../x", true},
		{"a/b/l", "../../x", true},
		{"a/b/l", "../../../x", false},
		{"l", "..", false},
		{"l", "../..", false},
		{"l", "/etc", false},
		{"l", "", false},
		{"a/l", "x/../../y", false}, // ".." after a name climbs from wherever x leads
		{"a/l", "x/../y", false},
		{"l", "x\x00y", false},
	}
	for _, tt := range tests {
		if got := linkStaysInside(tt.name, tt.target); got != tt.want {
			t.Errorf("linkStaysInside(%q, %q) = %v, want %v", tt.name, tt.target, got, tt.want)
		}
	}
}
