package pipeline

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flow-ci/flow-ci/internal/wsfiles"
)

// Limits on a pipeline's caches.
const (
	// MaxCaches bounds the caches of a pipeline (each is one restore and one save).
	MaxCaches = 8
	// maxCachePaths bounds the directories of one cache.
	maxCachePaths = 8
	// maxCacheKeyFiles bounds the globs a key hashes.
	maxCacheKeyFiles = 8
	// maxKeyPrefix bounds a key's prefix: keys are at most this plus a hash.
	maxKeyPrefix = 64
	// maxRestoreKeys bounds a cache's fallback keys, as the archive does.
	maxRestoreKeys = 8
)

// SaveCachesStep names the step the operator adds to the end of a run that saves its
// caches. Step names starting with ReservedStepPrefix are refused in files, so that no
// step of a file can pass for it.
const (
	ReservedStepPrefix = "flow-ci:"
	SaveCachesStep     = ReservedStepPrefix + "save-caches"
	// SaveCachesTimeout bounds the saving step: packing and sending every cache.
	SaveCachesTimeout = 30 * time.Minute
)

// Cache is one named cache of a pipeline: directories restored before the first step
// and saved after the run succeeds, under a key made from the contents of files.
type Cache struct {
	// Name is unique in the pipeline; entries are kept per namespace, repository,
	// branch and name.
	Name string
	// Preset is the tool whose directories and environment the cache takes ("" none).
	Preset string
	// Paths are the directories, relative to the checkout or, as "~/...", to $HOME.
	Paths []string
	// Env is the environment the preset sets for every step, with "~" for $HOME.
	Env []EnvVar
	// KeyPrefix starts the key; KeyFiles are the globs whose contents make the rest.
	KeyPrefix string
	KeyFiles  []string
	// RestoreKeys are the key prefixes restored when no entry has the key, in order.
	RestoreKeys []string
	// Line is where the file declares it.
	Line int
}

// preset is what a preset sets for a cache.
type preset struct {
	paths, files []string
	env          []EnvVar
}

// Presets are the caches of the common tools: their directories under $HOME, the
// variables that point the tools there (an image may set them elsewhere, as golang's
// GOPATH=/go), and the files whose contents say when they change.
var Presets = map[string]preset{
	"go": {paths: []string{"~/go/pkg/mod", "~/.cache/go-build"}, files: []string{"**/go.sum"},
		env: []EnvVar{{"GOCACHE", "~/.cache/go-build"}, {"GOMODCACHE", "~/go/pkg/mod"}}},
	"npm": {paths: []string{"~/.npm"}, files: []string{"**/package-lock.json"},
		env: []EnvVar{{"npm_config_cache", "~/.npm"}}},
	"pip": {paths: []string{"~/.cache/pip"}, files: []string{"**/requirements*.txt"},
		env: []EnvVar{{"PIP_CACHE_DIR", "~/.cache/pip"}}},
	"maven": {paths: []string{"~/.m2/repository"}, files: []string{"**/pom.xml"},
		env: []EnvVar{{"MAVEN_OPTS", "-Dmaven.repo.local=~/.m2/repository"}}},
	"gradle": {paths: []string{"~/.gradle/caches", "~/.gradle/wrapper"}, files: []string{"**/*.gradle*", "**/gradle-wrapper.properties"},
		env: []EnvVar{{"GRADLE_USER_HOME", "~/.gradle"}}},
}

// cacheName is a cache's name: it shows in keys and status.
var cacheName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$`)

// keyText is what a key's prefix and restore keys may hold.
var keyText = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// caches converts the pipeline's caches:
//
//	caches:
//	- name: go
//	  preset: go
//	- name: assets
//	  paths: [web/node_modules, ~/.cache/x]
//	  key: {prefix: assets-v2, files: [web/package-lock.json]}
//	  restoreKeys: [assets-v2-]
func (v *validator) caches(n *yaml.Node, cp string) []Cache {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		v.add(n, cp, "must be a list, got %s", describe(n))
		return nil
	}
	if len(n.Content) > MaxCaches {
		v.add(n, cp, "must have at most %d caches, got %d", MaxCaches, len(n.Content))
		return nil
	}
	var out []Cache
	for i, item := range n.Content {
		c, ok := v.cache(item, indexPath(cp, i))
		if !ok {
			continue
		}
		for _, o := range out {
			if o.Name == c.Name {
				v.add(item, indexPath(cp, i)+".name", "cache %s is declared twice", quote(c.Name))
			}
		}
		out = append(out, c)
	}
	return out
}

func (v *validator) cache(item *yaml.Node, ip string) (Cache, bool) {
	f, ok := v.fields(item, ip, []string{"name", "preset", "paths", "key", "restoreKeys"})
	if !ok {
		return Cache{}, false
	}
	c := Cache{Line: item.Line}
	if name, ok := v.name(item, f["name"], ip+".name", 32); ok {
		if !cacheName.MatchString(name) {
			v.add(f["name"], ip+".name", "must be lowercase letters, digits and '-', at most 32, got %s", quote(name))
		}
		c.Name = name
	}
	if pn := f["preset"]; pn != nil {
		if s, ok := v.text(pn, ip+".preset"); ok {
			p, known := Presets[s]
			if !known {
				v.add(pn, ip+".preset", "must be one of go, npm, pip, maven, gradle, got %s", quote(s))
			}
			c.Preset, c.Paths, c.KeyFiles, c.Env = s, p.paths, p.files, p.env
		}
	}
	if pn := f["paths"]; pn != nil {
		c.Paths = v.cachePaths(pn, ip+".paths")
	} else if c.Preset == "" {
		v.add(item, ip+".paths", "is required without a preset")
	}
	c.KeyPrefix = c.Name
	if kn := f["key"]; kn != nil {
		v.cacheKey(kn, ip+".key", &c)
	}
	c.RestoreKeys = []string{c.KeyPrefix + "-"}
	if rn := f["restoreKeys"]; rn != nil && rn.Kind == yaml.SequenceNode && len(rn.Content) > maxRestoreKeys {
		v.add(rn, ip+".restoreKeys", "must have at most %d keys, got %d", maxRestoreKeys, len(rn.Content))
	} else if rn != nil {
		c.RestoreKeys = v.oneOrMany(rn, ip+".restoreKeys", func(k *yaml.Node, kp, s string) bool {
			if len(s) > maxKeyPrefix || !keyText.MatchString(s) {
				v.add(k, kp, "must be letters, digits, '.', '_' and '-', at most %d, got %s", maxKeyPrefix, quote(s))
				return false
			}
			return true
		})
	}
	return c, c.Name != ""
}

// cacheKey reads key: {prefix, files}.
func (v *validator) cacheKey(n *yaml.Node, kp string, c *Cache) {
	f, ok := v.fields(n, kp, []string{"prefix", "files"})
	if !ok {
		return
	}
	if pn := f["prefix"]; pn != nil {
		if s, ok := v.text(pn, kp+".prefix"); ok {
			if len(s) > maxKeyPrefix || !keyText.MatchString(s) {
				v.add(pn, kp+".prefix", "must be letters, digits, '.', '_' and '-', at most %d, got %s", maxKeyPrefix, quote(s))
			}
			c.KeyPrefix = s
		}
	}
	if fn := f["files"]; fn != nil {
		c.KeyFiles = v.oneOrMany(fn, kp+".files", func(g *yaml.Node, gp, glob string) bool {
			if err := wsfiles.ValidatePattern(glob); err != nil {
				v.add(g, gp, "invalid file glob %s: %v", quote(glob), err)
				return false
			}
			return true
		})
		if len(c.KeyFiles) > maxCacheKeyFiles {
			v.add(fn, kp+".files", "must have at most %d globs, got %d", maxCacheKeyFiles, len(c.KeyFiles))
		}
	}
}

// cachePaths reads a cache's directories: relative to the checkout, or "~/..." under
// $HOME; never outside both.
func (v *validator) cachePaths(n *yaml.Node, pp string) []string {
	paths := v.oneOrMany(n, pp, func(pn *yaml.Node, p, s string) bool {
		rel := strings.TrimPrefix(s, "~/")
		c := path.Clean(rel)
		switch {
		case s == "" || s == "~" || path.IsAbs(rel) || strings.ContainsAny(s, "\x00\\*?["):
			v.add(pn, p, "must be a directory relative to the repository root, or under ~/, got %s", quote(s))
			return false
		case c == "." || c == ".." || strings.HasPrefix(c, "../"):
			v.add(pn, p, "must not be the workspace itself or leave it, got %s", quote(s))
			return false
		}
		return true
	})
	if len(paths) == 0 || len(paths) > maxCachePaths {
		v.add(n, pp, "must list 1 to %d directories", maxCachePaths)
	}
	for i, p := range paths {
		if rest, home := strings.CutPrefix(p, "~/"); home {
			paths[i] = "~/" + path.Clean(rest)
		} else {
			paths[i] = path.Clean(p)
		}
	}
	return paths
}

// String is the cache as status and logs name it.
func (c Cache) String() string { return fmt.Sprintf("%s (%s)", c.Name, strings.Join(c.Paths, ", ")) }

// WithCacheSave adds the step that saves p's caches, SaveCachesStep, as the last
// finally step: it runs once every step of the graph has succeeded. p without caches
// is returned as is. The operator adds it to the runs that may save
// (v1alpha1.SavesCaches) and only to those, so every pass of such a run sees the same
// steps.
func WithCacheSave(p Pipeline) Pipeline {
	if len(p.Caches) == 0 {
		return p
	}
	p.Finally = append(append([]Step(nil), p.Finally...), Step{
		Name: SaveCachesStep, Finally: true, SavesCaches: true,
		// A cache that is not saved makes the next run slower, never this one failed.
		AllowFailure: true,
		When:         When{Status: StatusSuccess},
		Timeout:      SaveCachesTimeout,
		Commands:     []string{"save caches"}, // not run: the operator renders this step itself
	})
	return p
}
