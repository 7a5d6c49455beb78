// Package gitsource talks to git remotes for flow-ci: it resolves a branch to a commit
// (ResolveCommit), lists a remote's branches (ListBranches), checks that a commit is on
// a branch (OnBranch), reads one file at a commit (ReadFile) and checks a commit out for
// the clone Job (Clone), using go-git over https, http and ssh. Credentials come from a
// Secret's data (AuthFromSecretData).
//
// Every call runs under a deadline with a transport private to the call, dials only
// addresses the egress policy allows (Egress: not loopback, private, link-local or
// metadata unless the operator allows the network), reads within a byte budget counted
// after any decoding (Budget), and returns errors that wrap one of the Err* sentinels,
// with secrets and a server's own text kept out. IsPermanent tells user errors (no
// retry) from transient ones.
//
// The package is pure: it imports nothing from Kubernetes.
package gitsource
