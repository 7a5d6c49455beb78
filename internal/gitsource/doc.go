// Package gitsource talks to git remotes for flow-ci: it resolves a branch
// to a commit (ResolveCommit), reads one file at a commit (ReadFile) and
// checks a commit out for the clone Job (Clone), using go-git over https,
// http and ssh. Credentials come from a Secret's data (AuthFromSecretData).
//
// Every call runs under a deadline with a transport private to the call,
// refuses link-local/metadata addresses at dial time, and returns errors
// that wrap one of the Err* sentinels, with secrets scrubbed from their
// text. IsPermanent tells user errors (no retry) from transient ones.
//
// The package is pure: it imports nothing from Kubernetes.
package gitsource
