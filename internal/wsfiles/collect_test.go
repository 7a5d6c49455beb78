package wsfiles

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// hostileTree is a workspace with what a step may leave behind.
var hostileTree = map[string]string{
	"dist/app.tar.gz":       "tgz",
	"dist/app.zip":          "zip!",
	"dist/sub/extra.tar.gz": "extra",
	"reports/a.xml":         "<a/>",
	"reports/deep/b.xml":    "<bb/>",
	"src/c.xml":             "<c/>",
	"src/main.go":           "package main",
	"build/out/bin/tool":    "ELF",
	"build/out/lib.a":       "!<arch>",
	"link-in":               "->dist/app.zip",
	"dirlink":               "->build/out",
	"passwd":                "->/etc/passwd",
	"up":                    "->../outside",
	"dist/up2":              "->../../outside",
	"gone":                  "->nowhere",
	"pipe":                  "|fifo",
}

func TestCollect(t *testing.T) {
	root, _ := workspace(t, hostileTree)
	files := func(pairs ...any) []File {
		var out []File
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, File{Path: pairs[i].(string), Size: int64(pairs[i+1].(int))})
		}
		return out
	}
	tests := []struct {
		name     string
		patterns []string
		want     Result
	}{
		{"glob in a directory", []string{"dist/*.tar.gz"},
			Result{Files: files("dist/app.tar.gz", 3)}},
		{"any depth", []string{"**/*.xml"},
			Result{Files: files("reports/a.xml", 4, "reports/deep/b.xml", 5, "src/c.xml", 4)}},
		{"a named directory takes all under it", []string{"dist"},
			Result{Files: files("dist/app.tar.gz", 3, "dist/app.zip", 4, "dist/sub/extra.tar.gz", 5),
				Refused: []Refused{{"dist/up2", reasonLeaves}}}},
		{"a matched directory takes all under it", []string{"build/*"},
			Result{Files: files("build/out/bin/tool", 3, "build/out/lib.a", 7)}},
		{"duplicates across patterns count once", []string{"dist/*.zip", "dist/app.*", "link-in"},
			Result{Files: files("dist/app.tar.gz", 3, "dist/app.zip", 4, "link-in", 4)}},
		{"a symlinked directory inside is followed", []string{"dirlink"},
			Result{Files: files("dirlink/bin/tool", 3, "dirlink/lib.a", 7)}},
		{"a glob through a symlinked directory", []string{"dirlink/*.a"},
			Result{Files: files("dirlink/lib.a", 7)}},
		{"symlinks out are refused", []string{"passwd", "up", "gone"},
			Result{Refused: []Refused{{"gone", reasonDangling}, {"passwd", reasonLeaves}, {"up", reasonLeaves}}}},
		{"a fifo is refused", []string{"pipe"},
			Result{Refused: []Refused{{"pipe", reasonFifo}}}},
		{"unmatched patterns are listed", []string{"nothing/*.txt", "dist/*.zip", "missing"},
			Result{Files: files("dist/app.zip", 4), Unmatched: []string{"nothing/*.txt", "missing"}}},
		{"a glob's start that leaves", []string{"up/*"},
			Result{Refused: []Refused{{"up", reasonLeaves}}}},
		{"a symlink the glob does not match is not reported", []string{"*.go"},
			Result{Unmatched: []string{"*.go"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Collect(root, tt.patterns, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Collect(%q) (-want +got):\n%s", tt.patterns, diff)
			}
		})
	}
}

func TestCollectWholeWorkspace(t *testing.T) {
	root, _ := workspace(t, hostileTree)
	got, err := Collect(root, []string{"."}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range got.Files {
		paths = append(paths, f.Path)
	}
	// dirlink leads to build/out, walked already under its own name.
	want := []string{"build/out/bin/tool", "build/out/lib.a",
		"dist/app.tar.gz", "dist/app.zip", "dist/sub/extra.tar.gz", "link-in",
		"reports/a.xml", "reports/deep/b.xml", "src/c.xml", "src/main.go"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	wantRefused := []Refused{{"dirlink", reasonWalked}, {"dist/up2", reasonLeaves}, {"gone", reasonDangling},
		{"passwd", reasonLeaves}, {"pipe", reasonFifo}, {"up", reasonLeaves}}
	if diff := cmp.Diff(wantRefused, got.Refused); diff != "" {
		t.Errorf("refused (-want +got):\n%s", diff)
	}
}

func TestCollectSymlinkLoops(t *testing.T) {
	root, _ := workspace(t, map[string]string{
		"a/x.txt": "x", "a/back": "->..", "a/self": "->.", "b/c": "->../b",
	})
	got, err := Collect(root, []string{"."}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Files: []File{{"a/x.txt", 1}},
		Refused: []Refused{{"a/back", reasonWalked}, {"a/self", reasonWalked}, {"b/c", reasonWalked}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestCollectLimits(t *testing.T) {
	spec := map[string]string{}
	for i := range 10 {
		spec[fmt.Sprintf("f%d", i)] = "x"
	}
	spec[strings.Repeat("d/", 8)+"deep"] = "x"
	root, _ := workspace(t, spec)

	got, err := Collect(root, []string{"f*"}, Limits{MaxFiles: 8})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Files) != 8 || got.Files[7].Path != "f7" {
		t.Errorf("MaxFiles 8: kept %v", got.Files)
	}
	wantRefused := []Refused{{"f8", "more than 8 files"}, {"f9", "more than 8 files"}}
	if diff := cmp.Diff(wantRefused, got.Refused); diff != "" {
		t.Errorf("MaxFiles 8: refused (-want +got):\n%s", diff)
	}

	got, err = Collect(root, []string{"."}, Limits{MaxWalk: 5})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Refused{{".", "walk stopped after 5 entries"}}; !cmp.Equal(want, got.Refused) || len(got.Files) != 0 {
		t.Errorf("MaxWalk 5: got %+v", got)
	}

	got, err = Collect(root, []string{"d"}, Limits{MaxDepth: 4})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Refused{{"d/d/d/d", reasonTooDeep}}; !cmp.Equal(want, got.Refused) || len(got.Files) != 0 {
		t.Errorf("MaxDepth 4: got %+v", got)
	}
}

func TestCollectRefusesInvalidPatterns(t *testing.T) {
	root, _ := workspace(t, nil)
	for _, p := range []string{"../x", "/etc", "a/./b", ""} {
		if _, err := Collect(root, []string{"ok", p}, Limits{}); err == nil {
			t.Errorf("Collect(%q) = nil error", p)
		}
	}
}

func TestOpen(t *testing.T) {
	root, _ := workspace(t, hostileTree)
	tests := []struct {
		rel, want string // want is the content, or "error"
	}{
		{"dist/app.zip", "zip!"},
		{"link-in", "zip!"},
		{"dirlink/lib.a", "!<arch>"},
		{"passwd", "error"},
		{"up", "error"},
		{"../outside", "error"},
		{"/etc/passwd", "error"},
		{"dist/../../outside", "error"},
		{"dist", "error"},
		{"pipe", "error"}, // and at once: a fifo's open must not wait for a writer
	}
	for _, tt := range tests {
		done := make(chan string, 1)
		go func() {
			f, _, err := Open(root, tt.rel)
			if err != nil {
				done <- "error"
				return
			}
			defer f.Close()
			b, err := io.ReadAll(f)
			if err != nil {
				done <- "error"
				return
			}
			done <- string(b)
		}()
		select {
		case got := <-done:
			if got != tt.want {
				t.Errorf("Open(%q) read %q, want %q", tt.rel, got, tt.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Open(%q) blocked", tt.rel)
		}
	}
}
