package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// list answers GET /v1/namespaces/{ns}/runs: one page of the namespace's runs, newest
// first, filtered by the query (repo, branch, commit, phase, since, until, limit,
// after).
func (s *server) list(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("ns")
	if err := checkNamespace(ns); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q, err := listQuery(ns, r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.allow(w, r, ns, "list", "pipelineruns", "") {
		return
	}
	records, next, err := s.store.List(r.Context(), q)
	if err != nil {
		s.storeFailed(w, r, err, "no such runs")
		return
	}
	page := Page{Items: make([]Summary, 0, len(records)), Next: next}
	for _, rec := range records {
		page.Items = append(page.Items, summaryOf(rec))
	}
	s.writeJSON(w, page)
}

// get answers GET /v1/namespaces/{ns}/runs/{name}[?uid=]: the newest archived run of
// that name, or the one with that UID, with its stored document and its logs' state.
// A run that has no record yet (it still runs) is found by its UID alone, as long as
// the archive holds a log of it in this namespace: its answer has no record and the
// name is the one asked for, since the archive learns a run's name from its record.
func (s *server) get(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("ns"), r.PathValue("name")
	uid, err := runRef(ns, name, r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.allow(w, r, ns, "get", "pipelineruns", "") {
		return
	}
	rec, recorded, err := s.record(r.Context(), ns, name, uid)
	var streams []archive.Stream
	if err == nil {
		streams, err = s.streams(r.Context(), rec.UID, ns)
	}
	if err == nil && !recorded && len(streams) == 0 {
		err = archive.ErrNotFound
	}
	if err != nil {
		s.storeFailed(w, r, err, "the archive holds no such run")
		return
	}
	run := Run{Summary: summaryOf(rec), Streams: make([]Stream, 0, len(streams))}
	if recorded {
		run.Record = rec.Doc
	}
	for _, st := range streams {
		run.Streams = append(run.Streams, streamOf(st))
	}
	s.writeJSON(w, run)
}

// record is the newest run named name in ns, or, with a uid, that run if it is named
// name in ns: a UID never reaches another namespace's run, whatever the reader may
// read here. A uid the archive holds no record of is not an error: recorded is false
// and the record holds only the UID, namespace and name asked for, so that a running
// run's logs are read (in ns only: see streams and getLog).
func (s *server) record(ctx context.Context, ns, name, uid string) (rec archive.Record, recorded bool, err error) {
	if uid == "" {
		rec, err = s.store.Record(ctx, ns, name)
		return rec, err == nil, err
	}
	rec, err = s.store.RecordByUID(ctx, uid)
	switch {
	case errors.Is(err, archive.ErrNotFound):
		return archive.Record{UID: uid, Namespace: ns, Name: name}, false, nil
	case err != nil:
		return archive.Record{}, false, err
	case rec.Namespace != ns || rec.Name != name:
		return archive.Record{}, false, archive.ErrNotFound
	}
	return rec, true, nil
}

// streams are the run's logs stored in namespace ns. The store lists a run's logs by
// UID alone; each is kept only if its state is found in ns, as a log read is.
func (s *server) streams(ctx context.Context, uid, ns string) ([]archive.Stream, error) {
	all, err := s.store.Streams(ctx, uid)
	if errors.Is(err, archive.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	kept := all[:0]
	for _, st := range all {
		state, ok, err := s.store.State(ctx, archive.StreamKey{UID: uid, Namespace: ns, Stream: st.Stream})
		if err != nil {
			return nil, err
		}
		if ok {
			kept = append(kept, archive.Stream{Stream: st.Stream, State: state})
		}
	}
	return kept, nil
}
