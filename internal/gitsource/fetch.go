package gitsource

import (
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage"
)

// fetchCommit downloads commit and its tree into st: depth 1 and no tags.
// filter, when the server supports it, leaves out objects we do not need
// (e.g. blobs over the size limit).
//
// We speak upload-pack directly instead of Remote.Fetch because the
// transport must be private to the call (see session), and because
// Remote.Fetch refuses a bare commit id unless the server advertises
// allow-*-sha1-in-want, while smart-HTTP servers serve reachable commits
// without advertising it.
func (c *call) fetchCommit(sess transport.UploadPackSession, st storage.Storer, commit plumbing.Hash, filter packp.Filter) error {
	ar, err := sess.AdvertisedReferencesContext(c.ctx)
	if err != nil {
		return c.fail("list refs of", err)
	}
	isTip := false
	for _, h := range ar.References {
		isTip = isTip || h == commit
	}
	for _, h := range ar.Peeled {
		isTip = isTip || h == commit
	}

	caps := ar.Capabilities
	req := packp.NewUploadPackRequestFromCapabilities(caps)
	req.Wants = []plumbing.Hash{commit}
	if caps.Supports(capability.Shallow) {
		req.Depth = packp.DepthCommits(1)
		_ = req.Capabilities.Set(capability.Shallow)
	}
	if caps.Supports(capability.NoProgress) {
		_ = req.Capabilities.Set(capability.NoProgress)
	}
	if filter != "" && caps.Supports(capability.Filter) {
		req.Filter = filter
		_ = req.Capabilities.Set(capability.Filter)
	}

	resp, err := sess.UploadPack(c.ctx, req)
	if err != nil {
		return c.notServed(err, commit, isTip)
	}
	defer resp.Close()
	if len(resp.Shallows) > 0 {
		if err := st.SetShallow(resp.Shallows); err != nil {
			return fmt.Errorf("record shallow commits: %w", err)
		}
	}
	if err := packfile.UpdateObjectStorage(st, demux(req.Capabilities, resp)); err != nil {
		return c.notServed(err, commit, isTip)
	}
	if _, err := st.EncodedObject(plumbing.CommitObject, commit); err != nil {
		return c.notServed(fmt.Errorf("commit missing from the server's pack"), commit, isTip)
	}
	return nil
}

// notServed classifies a failed fetch. A failure that is not a timeout,
// auth or similar well-known error, for a commit that is no ref tip, is the
// server refusing (or not having) that commit: a permanent error.
func (c *call) notServed(err error, commit plumbing.Hash, isTip bool) error {
	classified := c.fail("fetch", err)
	if isTip || IsPermanent(classified) || errors.Is(classified, ErrTimeout) || c.ctx.Err() != nil {
		return classified
	}
	return fmt.Errorf("fetch %s: %w: the server cannot serve commit %s directly "+
		"(it does not exist there, or the server only allows fetching branch and tag tips)",
		safeURL(c.repoURL), ErrRevisionNotServed, commit)
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
