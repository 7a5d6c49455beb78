#!/usr/bin/env bash
# Prints a directory holding versitygw, the S3-compatible server the archive's tests store
# logs in (github.com/versity/versitygw, Apache-2.0, serving a plain directory with its
# posix backend). It comes from the Go module proxy and is cached under
# bin/tools/versitygw-<version>; the first build takes 1.5 to 5 minutes on 2 cores
# (measured: 82 s with a partly warm Go build cache; 285 s with an empty one, sharing
# the cores with other builds).
# Progress goes to stderr; stdout is only the path.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSITYGW_VERSION=${VERSITYGW_VERSION:-1.8.0}
DIR=$ROOT/bin/tools/versitygw-$VERSITYGW_VERSION
log() { echo "versitygw: $*" >&2; }

if [ -x "$DIR/versitygw" ]; then echo "$DIR"; exit 0; fi
mkdir -p "$DIR"
log "building versitygw $VERSITYGW_VERSION from the Go module proxy (up to 5 min cold on 2 cores)..."
start=$SECONDS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# From a directory outside any module, so that the download does not touch this
# repository's go.mod; into a temporary GOBIN, so that a failed build leaves no binary.
(cd "$tmp" && CGO_ENABLED=0 GOBIN="$tmp/bin" go install -trimpath \
  -ldflags "-s -w -X main.Version=v$VERSITYGW_VERSION" \
  "github.com/versity/versitygw/cmd/versitygw@v$VERSITYGW_VERSION") >&2
mv "$tmp/bin/versitygw" "$DIR/versitygw"
log "built in $((SECONDS - start)) s"
echo "$DIR"
