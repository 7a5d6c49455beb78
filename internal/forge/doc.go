// Package forge posts a CI run's commit status to a forge: GitHub, GitLab or
// Gitea. StateFor maps a run phase to a forge-neutral State, NewRequest builds
// the HTTP request (pure), and Client.Post sends it.
//
// Post dials only addresses the egress policy allows, follows no redirects
// (they could carry the token to another host), bounds what it reads, and
// keeps the token out of every error. Errors wrapping ErrPermanent are ones a
// retry cannot fix; all others are transient.
//
// The package imports nothing from Kubernetes beyond the API's phase type.
package forge
