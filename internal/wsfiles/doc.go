// Package wsfiles moves files between a run's workspace and a stream: the artifacts a
// step keeps (Collect, Open), the caches a pipeline saves and restores (Pack, Unpack)
// and the keys that name them (HashFiles).
//
// The tenant whose steps ran in the workspace controls every file in it: names,
// symlinks, fifos, sizes, depth. So every access goes through an os.Root opened on the
// workspace, which no name or symlink can leave, every walk and stream is bounded
// (entries, depth, bytes, decoder memory), and a cache archive is checked entry by
// entry as if a stranger wrote it. The package is pure: no Kubernetes, no network.
package wsfiles
