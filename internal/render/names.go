// Package render turns a PipelineRun and its parsed pipeline into the objects that
// execute it: the definition ConfigMap, the workspace PersistentVolumeClaim, the clone
// Job and one Job per step (step.go, with the step's script and environment, which the
// local runner shares), and the runs a PipelineTrigger creates (trigger.go). It also
// names them (names.go), groups runs for concurrency (group.go), and computes what a
// graph needs of a node at its peak (peak.go).
//
// Every function is pure: the same inputs always render the same objects, so
// the names of children are known before they exist and a restarted
// controller finds the children it made instead of making new ones.
package render

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

const (
	// maxNameLen is a DNS-1123 label. Jobs need it, not just the 253 of a
	// subdomain, because the Job controller copies the Job's name into a
	// label on its pods.
	maxNameLen = 63
	// hashLen hex characters (40 bits) of sha256 disambiguate shortened names.
	hashLen = 10
	// maxStepNamePart keeps the step name readable without crowding out the
	// run name.
	maxStepNamePart = 20
)

// WorkspaceName is the name of the run's PersistentVolumeClaim: the one it took over
// from the run it resumes (status.workspace), else its own.
func WorkspaceName(run *v1alpha1.PipelineRun) string {
	if run.Status.Workspace != "" {
		return run.Status.Workspace
	}
	return childName(run.Name, "-ws", identity(run.Name, v1alpha1.ComponentWorkspace))
}

// CloneJobName is the name of the run's clone Job.
func CloneJobName(run *v1alpha1.PipelineRun) string {
	return childName(run.Name, "-clone", identity(run.Name, v1alpha1.ComponentClone))
}

// StepJobName is the name of the Job for step index of the run. The index is
// part of the name, so steps whose names sanitise equally ("Build", "build!")
// still get distinct Jobs.
func StepJobName(run *v1alpha1.PipelineRun, index int, stepName string) string {
	idx := strconv.Itoa(index)
	suffix := "-" + idx
	if s := sanitizeStepName(stepName); s != "" {
		suffix += "-" + s
	}
	return childName(run.Name, suffix, identity(run.Name, v1alpha1.ComponentStep, idx, stepName))
}

// childName returns <run><suffix> when that is a valid DNS label and the run
// name needed no change. Otherwise the run part is shortened as needed and a
// hash of the full identity is appended, so that two runs whose names differ
// only in what sanitising removes ("a.b" and "a-b") cannot share children.
// suffix must start with '-' and end with an alphanumeric character.
func childName(runName, suffix, ident string) string {
	run := sanitizeRunName(runName)
	if run != "" && run == runName && len(run)+len(suffix) <= maxNameLen {
		return run + suffix
	}
	if run == "" {
		run = "run"
	}
	room := maxNameLen - len(suffix) - 1 - hashLen
	if len(run) > room {
		// run starts with an alphanumeric character, so trimming cannot
		// empty it as long as room >= 1, which the bounded suffix ensures.
		run = strings.TrimRight(run[:room], "-")
	}
	return run + suffix + "-" + shortHash(ident)
}

// identity joins the untruncated inputs of a name. The NUL separator cannot
// occur in any of them, so distinct inputs give distinct identities.
func identity(parts ...string) string {
	return strings.Join(parts, "\x00")
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:hashLen]
}

// sanitizeRunName lowercases name and replaces each run of characters other
// than [a-z0-9-] (the dots of a DNS subdomain, mostly) with one '-', then
// trims non-alphanumerics from both ends. A name that is already a DNS label
// comes back unchanged.
func sanitizeRunName(name string) string {
	return sanitize(name, func(c byte) bool { return isAlnum(c) || c == '-' }, len(name))
}

// sanitizeStepName is like sanitizeRunName but also collapses dashes and
// keeps at most maxStepNamePart characters.
func sanitizeStepName(name string) string {
	return sanitize(name, isAlnum, maxStepNamePart)
}

// sanitize lowercases s, replaces each run of bytes that keep rejects with a
// single '-', trims '-' from both ends and cuts the result to at most max
// bytes without leaving a trailing '-'. Non-ASCII characters are rejected
// byte by byte, so they collapse into one '-' like any other run.
func sanitize(s string, keep func(byte) bool, max int) string {
	var b strings.Builder
	b.Grow(len(s))
	dash := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if keep(c) {
			b.WriteByte(c)
			dash = false
			continue
		}
		if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > max {
		out = strings.TrimRight(out[:max], "-")
	}
	return out
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
}
