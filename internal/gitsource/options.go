package gitsource

import (
	"net/netip"
	"time"
)

const (
	// defaultTimeout bounds ResolveCommit and ReadFile: well under any run's timeout, so
	// a silent server costs one attempt, not the run.
	defaultTimeout      = 30 * time.Second
	defaultCloneTimeout = 10 * time.Minute
	maxDialTimeout      = 30 * time.Second
	maxTLSTimeout       = 15 * time.Second
)

type options struct {
	timeout  time.Duration
	egress   Egress
	budget   *Budget
	spillDir string
	maxFiles int
}

// Option tunes one call.
type Option func(*options)

// WithTimeout bounds the whole call (default 30s, 10m for Clone). A non-positive d
// keeps the default.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithAllowedNetworks lets the call reach these networks even where the default egress
// policy denies them (loopback, private, link-local, ...).
func WithAllowedNetworks(p ...netip.Prefix) Option {
	return func(o *options) { o.egress.Allowed = append(o.egress.Allowed, p...) }
}

// WithBudget replaces the call's default read budget; zero fields keep their default.
func WithBudget(b Budget) Option {
	return func(o *options) { o.budget = &b }
}

// WithMaxFiles bounds the number of files Clone checks out (default 200,000).
func WithMaxFiles(n int) Option { return func(o *options) { o.maxFiles = n } }

// budgetOr is the call's budget, with the defaults' values where it sets none.
func (o *options) budgetOr(def Budget) Budget {
	b := def
	if o.budget != nil {
		if o.budget.Bytes > 0 {
			b.Bytes = o.budget.Bytes
		}
		if o.budget.Pack > 0 {
			b.Pack = o.budget.Pack
		}
		if o.budget.Inflated > 0 {
			b.Inflated = o.budget.Inflated
		}
	}
	return b
}
