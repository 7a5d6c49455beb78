package archive

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// Retention deletes the oldest records (with their logs) past an age, over a
// namespace's size and over the archive's size, every Interval. Zero disables a limit.
type Retention struct {
	Store        archive.Store
	MaxAge       time.Duration
	MaxNamespace int64
	MaxTotal     int64
	Interval     time.Duration
	Log          logr.Logger
	Metrics      *Metrics
	// After a pass, usage is refreshed for the streams' namespace cap.
	usage *usage
	now   func() time.Time
}

// NewRetention returns the retention of r's store, sharing its usage counts.
func (r *Reconciler) NewRetention(maxAge time.Duration, maxNamespace, maxTotal int64, every time.Duration) *Retention {
	return &Retention{Store: r.Store, MaxAge: maxAge, MaxNamespace: maxNamespace, MaxTotal: maxTotal,
		Interval: every, Log: r.Log, Metrics: r.Metrics, usage: &r.usage, now: time.Now}
}

// Start runs a pass every Interval until ctx ends (a manager Runnable).
func (t *Retention) Start(ctx context.Context) error {
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	for {
		if err := t.Pass(ctx); err != nil && ctx.Err() == nil {
			t.Metrics.error("retention")
			t.Log.Error(err, "retention pass")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Pass deletes what is past the limits, oldest first.
func (t *Retention) Pass(ctx context.Context) error {
	if t.MaxAge > 0 {
		if err := t.deleteWhile(ctx, archive.Query{Until: t.now().Add(-t.MaxAge)}, func(archive.Record) bool { return true }); err != nil {
			return err
		}
	}
	if _, err := t.Store.ExpirePendingCaches(ctx, t.now().Add(-pendingCacheAge)); err != nil {
		return fmt.Errorf("dropping caches whose run was never recorded: %w", err)
	}
	all, err := t.Store.Usage(ctx)
	if err != nil {
		return fmt.Errorf("reading usage: %w", err)
	}
	for _, u := range all {
		if over := u.Stored - t.MaxNamespace; t.MaxNamespace > 0 && over > 0 {
			if err := t.deleteWhile(ctx, archive.Query{Namespace: u.Namespace}, t.freed(&over)); err != nil {
				return err
			}
		}
	}
	if all, err = t.Store.Usage(ctx); err != nil {
		return fmt.Errorf("reading usage: %w", err)
	}
	if over := sum(all) - t.MaxTotal; t.MaxTotal > 0 && over > 0 {
		if err := t.deleteWhile(ctx, archive.Query{}, t.freed(&over)); err != nil {
			return err
		}
		if all, err = t.Store.Usage(ctx); err != nil {
			return fmt.Errorf("reading usage: %w", err)
		}
	}
	t.usage.set(all)
	t.Metrics.stored.Set(float64(sum(all)))
	return nil
}

func sum(all []archive.Usage) int64 {
	var n int64
	for _, u := range all {
		n += u.Stored
	}
	return n
}

// freed counts down *over by what each deleted record occupied, and stops at zero.
func (t *Retention) freed(over *int64) func(archive.Record) bool {
	return func(r archive.Record) bool {
		if *over <= 0 {
			return false
		}
		*over -= t.size(r)
		return true
	}
}

// size is what a record and its logs occupy.
func (t *Retention) size(r archive.Record) int64 {
	n := int64(len(r.Doc))
	streams, err := t.Store.Streams(context.Background(), r.UID)
	if err == nil {
		for _, s := range streams {
			n += s.State.Stored
		}
	}
	return n
}

// deleteWhile deletes records matching q, oldest first, while keep says so.
func (t *Retention) deleteWhile(ctx context.Context, q archive.Query, more func(archive.Record) bool) error {
	q.Oldest, q.Limit = true, 500
	for {
		page, next, err := t.Store.List(ctx, q)
		if err != nil {
			return fmt.Errorf("listing records: %w", err)
		}
		for _, r := range page {
			if !more(r) {
				return nil
			}
			if err := t.Store.Delete(ctx, r.UID); err != nil {
				return fmt.Errorf("deleting the record of %s/%s: %w", r.Namespace, r.Name, err)
			}
			t.Metrics.deleted.Inc()
		}
		if next == "" {
			return nil
		}
		q.After = next
	}
}
