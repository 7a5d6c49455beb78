package ingest

import "time"

// Resume is where a log read again picks up from a copy of it: the copy has every line
// stamped before Time, and the first Skip lines stamped Time. The archive's filter
// resumes from a stored copy with it, and a standby's copy of a stream from itself.
type Resume struct {
	Time time.Time
	Skip int
}

// Had says a line stamped t, the next one read, is one the copy has, and counts it.
func (r *Resume) Had(t time.Time) bool {
	switch {
	case t.Before(r.Time):
		return true
	case t.Equal(r.Time) && r.Skip > 0:
		r.Skip--
		return true
	}
	return false
}
