package pathglob

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		glob, file string
		want       bool
	}{
		{"README.md", "README.md", true},
		{"*.md", "README.md", true},
		{"*.md", "docs/x.md", false}, // anchored at the root, like GitHub
		{"?.go", "a.go", true},
		{"?.go", "ab.go", false},
		{"[ab].go", "b.go", true},
		{"[!ab].go", "b.go", false}, // git's negated class
		{"[!ab].go", "c.go", true},
		{"[^ab].go", "b.go", false},
		{"[[!].go", "!.go", true}, // '[' inside a class is a member
		{`\[!a].go`, "[!a].go", true},
		{"src/*", "src/a.go", true},
		{"src/*", "src/sub/a.go", false}, // '*' never crosses '/'
		{"src*", "src/a.go", false},
		{"docs", "docs/a.md", false}, // a glob matches files, not directories
		{"docs/**", "docs/a.md", true},
		{"docs/**", "docs/a/b/c.md", true},
		{"docs/**", "docs", true}, // "**" may take zero segments
		{"docs/**", "doc/a.md", false},
		{"docs/**", "docsx/a.md", false},
		{"**", "a", true},
		{"**", "a/b/c", true},
		{"**/*.md", "README.md", true},
		{"**/*.md", "a/b/README.md", true},
		{"**/*.md", "a/b/README.txt", false},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "a/x/y/c", false},
		{"a/**/b", "x/a/b", false},
		{"a/**/**/b", "a/b", true},
		{"**/x/**", "x", true},
		{"**/x/**", "a/x/b/c", true},
		{"**/x/**", "a/y/b", false},
		{"**.md", "README.md", true}, // "**" inside a segment is '*'
		{"**.md", "docs/x.md", false},
		{"a**/b", "abc/b", true},
		{"a**/b", "a/c/b", false},
		{`\*.md`, "*.md", true},
		{`\*.md`, "x.md", false},
		{"", "a", false},
		{"a", "", false},
		{"[", "[", false}, // malformed: matches nothing
		{"**/[/x", "a/[/x", false},
	}
	for _, tt := range tests {
		if got := Match(tt.glob, tt.file); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.glob, tt.file, got, tt.want)
		}
	}
}

// TestMatchManyDoubleStars guards against backtracking: a naive recursive
// matcher takes exponential time on many "**" that almost match.
func TestMatchManyDoubleStars(t *testing.T) {
	glob, file := "", ""
	for i := 0; i < 40; i++ {
		glob += "**/a/"
		file += "a/"
	}
	if Match(glob+"b", file+"c") {
		t.Fatal("matched a path that ends differently")
	}
	if !Match(glob+"b", file+"b") {
		t.Fatal("did not match")
	}
}

func TestValidGlob(t *testing.T) {
	tests := []struct {
		glob    string
		wantErr bool
	}{
		{"src/**", false},
		{"**/*.md", false},
		{"a/**/b", false},
		{"[abc].go", false},
		{`\!important`, false},
		{"", true},
		{"/src/**", true},
		{"src/", true},
		{"a//b", true},
		{"../x", true},
		{"a/../b", true},
		{"./a", true},
		{"[", true},
		{"a/[b", true},
		{"[]", true},
		{`a\`, true},
		{"!docs/**", true},
	}
	for _, tt := range tests {
		err := ValidGlob(tt.glob)
		if (err != nil) != tt.wantErr {
			t.Errorf("ValidGlob(%q) = %v, want error %v", tt.glob, err, tt.wantErr)
		}
	}
}
