#!/usr/bin/env bash
# Prints a directory holding a Gitea build for the tests' real forge: the gitea binary
# with the templates and options it reads at run time. Gitea comes from the Go module
# proxy (code.gitea.io/gitea, pure Go with its modernc SQLite driver) and is cached
# under bin/tools/gitea-<version>; the first build takes about 10 minutes on 2 cores.
# Progress goes to stderr; stdout is only the path.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GITEA_VERSION=${GITEA_VERSION:-1.27.3}
DIR=$ROOT/bin/tools/gitea-$GITEA_VERSION
log() { echo "gitea: $*" >&2; }

if [ -x "$DIR/gitea" ] && [ -d "$DIR/templates" ] && [ -d "$DIR/options" ]; then echo "$DIR"; exit 0; fi
mkdir -p "$DIR"
# Outside any module, so that the download does not touch this repository's go.mod.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$(cd "$tmp" && go mod download -json "code.gitea.io/gitea@v$GITEA_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { log "could not download code.gitea.io/gitea@v$GITEA_VERSION"; exit 1; }
log "building Gitea $GITEA_VERSION from the Go module proxy (about 10 min cold on 2 cores)..."
start=$SECONDS
# Its go.mod has replace directives, so `go install pkg@version` refuses it: build it as
# the main module, in place (the module cache is read-only; nothing is written there).
(cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.Version=$GITEA_VERSION" -o "$DIR/gitea.tmp" .) >&2
rm -rf "$DIR/templates" "$DIR/options" "$DIR/public"
cp -r "$src/templates" "$src/options" "$src/public" "$DIR/"
chmod -R u+w "$DIR"
mv "$DIR/gitea.tmp" "$DIR/gitea"
log "built in $((SECONDS - start)) s"
echo "$DIR"
