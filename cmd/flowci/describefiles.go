package main

import (
	"fmt"
	"strings"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// describeFiles prints what the run kept (artifacts) and restored and saved (caches).
func describeFiles(scr *screen, st v1alpha1.PipelineRunStatus) {
	if a := st.Artifacts; a != nil {
		scr.line(fmt.Sprintf("Artifacts:  %d files, %d bytes (flowci artifacts ls)", a.Count, a.Bytes))
	}
	if len(st.Caches) == 0 {
		return
	}
	scr.line("Caches:")
	for _, c := range st.Caches {
		scr.line("  " + cacheLine(c))
	}
}

// cacheLine is one cache: restored (which key, from where, bytes, time), saved.
func cacheLine(c v1alpha1.CacheStatus) string {
	parts := []string{c.Name, "key " + orNone(c.Key)}
	if c.RestoredKey != "" {
		p := fmt.Sprintf("restored %s from %s (%d bytes", c.RestoredKey, orNone(c.RestoredFrom), c.RestoredBytes)
		if c.RestoreTime != nil {
			p += " in " + c.RestoreTime.Duration.String()
		}
		parts = append(parts, p+")")
	} else {
		parts = append(parts, "not restored")
	}
	if c.Saved {
		p := fmt.Sprintf("saved (%d bytes", c.SavedBytes)
		if c.SaveTime != nil {
			p += " in " + c.SaveTime.Duration.String()
		}
		parts = append(parts, p+")")
	}
	if c.Message != "" {
		parts = append(parts, c.Message)
	}
	return strings.Join(parts, "  ")
}
