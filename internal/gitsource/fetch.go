package gitsource

import (
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage"
)

// fetchCommit downloads commit and its tree into st: depth 1 and no tags, within b.
// filter, when the server supports it, leaves out objects we do not need. A pack that
// must not be held in memory is spilled to a file in spillDir.
//
// We speak upload-pack directly instead of Remote.Fetch because the transport must be
// private to the call (see session), and because Remote.Fetch refuses a bare commit id
// unless the server advertises allow-*-sha1-in-want, while smart-HTTP servers serve
// reachable commits without advertising it.
func (c *call) fetchCommit(sess transport.UploadPackSession, ar *packp.AdvRefs, st storage.Storer, commit plumbing.Hash, filter packp.Filter, b Budget, spillDir string) error {
	if err := c.upload(sess, ar, st, commit, 1, filter, b, spillDir); err != nil {
		return err
	}
	if _, err := st.EncodedObject(plumbing.CommitObject, commit); err != nil {
		return c.notServed(errors.New("commit missing from the server's pack"), commit, isTip(ar, commit))
	}
	return nil
}

// upload asks the server for want, depth commits deep, and stores the pack it sends in
// st, within b.
func (c *call) upload(sess transport.UploadPackSession, ar *packp.AdvRefs, st storage.Storer, want plumbing.Hash, depth int, filter packp.Filter, b Budget, spillDir string) error {
	caps := ar.Capabilities
	req := packp.NewUploadPackRequestFromCapabilities(caps)
	req.Wants = []plumbing.Hash{want}
	if caps.Supports(capability.Shallow) {
		req.Depth = packp.DepthCommits(depth)
		_ = req.Capabilities.Set(capability.Shallow)
	}
	if caps.Supports(capability.NoProgress) {
		_ = req.Capabilities.Set(capability.NoProgress)
	}
	if filter != "" && caps.Supports(capability.Filter) {
		req.Filter = filter
		_ = req.Capabilities.Set(capability.Filter)
	}
	tip := isTip(ar, want)
	resp, err := sess.UploadPack(c.ctx, req)
	if err != nil {
		return c.notServed(err, want, tip)
	}
	defer resp.Close()
	if len(resp.Shallows) > 0 {
		if err := st.SetShallow(resp.Shallows); err != nil {
			return fmt.Errorf("record shallow commits: %w", err)
		}
	}
	if err := storePack(st, demux(req.Capabilities, resp), b, spillDir); err != nil {
		return c.notServed(err, want, tip)
	}
	return nil
}

func isTip(ar *packp.AdvRefs, h plumbing.Hash) bool {
	for _, r := range ar.References {
		if r == h {
			return true
		}
	}
	for _, r := range ar.Peeled {
		if r == h {
			return true
		}
	}
	return false
}

// notServed classifies a failed fetch. A failure that is not a timeout, a budget, auth
// or similar well-known error, for an object that is no ref tip, is the server refusing
// (or not having) that object: a permanent error.
func (c *call) notServed(err error, want plumbing.Hash, isTip bool) error {
	classified := c.fail("fetch", err)
	if isTip || IsPermanent(classified) || errors.Is(classified, ErrTimeout) || c.ctx.Err() != nil {
		return classified
	}
	return fmt.Errorf("fetch %s: %w: the server cannot serve %s directly "+
		"(it does not exist there, or the server only allows fetching branch and tag tips)",
		safeURL(c.repoURL), ErrRevisionNotServed, want)
}

func demux(caps *capability.List, r io.Reader) io.Reader {
	switch {
	case caps.Supports(capability.Sideband64k):
		return sideband.NewDemuxer(sideband.Sideband64k, r)
	case caps.Supports(capability.Sideband):
		return sideband.NewDemuxer(sideband.Sideband, r)
	}
	return r
}
