#!/usr/bin/env bash
# images.sh: container images without Docker or a registry. Each image is a docker-archive
# tarball (manifest.json, an image config with os/architecture set, one layer) made with
# tar and sha256sum only, so `ctr images import` (hack/local-cluster.sh load-image) takes it.
# Layers are deterministic: sorted names, mtime 0, numeric owners.
#
#   hack/images.sh busybox REF OUT.tar      static busybox (/usr/bin/busybox from busybox-static)
#   hack/images.sh go REF OUT.tar           busybox + this machine's Go toolchain (/usr/local/go),
#                                           offline: GOTOOLCHAIN=local GOPROXY=off CGO_ENABLED=0, user 65532
#   hack/images.sh binary REF OUT.tar BINARY ENTRYPOINT-JSON   (IMG_EXTRA_BINARIES="SRC=/DEST ..." adds more)
#                                           one static binary at ENTRYPOINT[0] (e.g. '["/flow-ci"]'),
#                                           /etc/passwd with nonroot 65532, /tmp 1777, CA certificates, user 65532
#   hack/images.sh postgres REF OUT.tar     busybox + this machine's Debian PostgreSQL (server, psql, pg-service), user 65532
#   hack/images.sh pause REF OUT.tar        the pod sandbox image (a 10-line static C program, needs gcc)
#   hack/images.sh rootfs DIR REF OUT.tar [ENTRYPOINT-JSON] [CMD-JSON]
#                                           pack a prepared root filesystem as is
#
# Sourced (`. hack/images.sh`), it only defines the img_* functions.
# REF must carry a tag other than latest (kubelet pulls :latest and untagged images always,
# and there is no registry to pull from).

# img_check_ref REF: refuse untagged, digest and :latest references.
img_check_ref() {
  local ref=$1 last=${1##*/}
  case "$ref" in
    "" | *@*) echo "images: '$ref': need NAME:TAG (no digest)" >&2; return 1 ;;
  esac
  case "$last" in
    *:latest) echo "images: '$ref': the :latest tag makes kubelet always pull; use a real tag" >&2; return 1 ;;
    *:?*) return 0 ;;
    *) echo "images: '$ref' has no tag; untagged means :latest, which kubelet always pulls" >&2; return 1 ;;
  esac
}

# img_pack ROOTFS REF OUT.tar [ENTRYPOINT-JSON] [CMD-JSON] [ENV-JSON] [USER] [WORKDIR]
# Packs ROOTFS (owners and modes as they are on disk) as a one-layer docker-archive tarball.
img_pack() {
  local root=$1 ref=$2 out=$3 ep=${4:-null} cmd=${5:-null}
  local env=${6:-'["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'} user=${7:-} wd=${8:-}
  img_check_ref "$ref" || return 1
  [ -d "$root" ] || { echo "images: $root is not a directory" >&2; return 1; }
  local w diff cfg
  w=$(mktemp -d "${TMPDIR:-/tmp}/img.XXXXXX")
  tar -C "$root" --sort=name --mtime=@0 --numeric-owner --format=gnu -cf "$w/layer.tar" .
  diff=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
  mv "$w/layer.tar" "$w/$diff.tar"
  printf '{"architecture":"%s","os":"linux","config":{"User":"%s","Env":%s,"Entrypoint":%s,"Cmd":%s,"WorkingDir":"%s"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"hack/images.sh"}]}' \
    "$(img_arch)" "$user" "$env" "$ep" "$cmd" "$wd" "$diff" > "$w/config.json"
  cfg=$(sha256sum "$w/config.json" | cut -d' ' -f1)
  mv "$w/config.json" "$w/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s.tar"]}]' "$cfg" "$ref" "$diff" > "$w/manifest.json"
  mkdir -p "$(dirname "$out")"
  tar -C "$w" --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -cf "$out.tmp" manifest.json "$cfg.json" "$diff.tar"
  mv "$out.tmp" "$out"
  rm -rf "$w"
}

img_arch() {
  case "$(uname -m)" in
    x86_64) echo amd64 ;;
    aarch64) echo arm64 ;;
    *) uname -m ;;
  esac
}

# img_base_rootfs DIR: directory skeleton, /etc/passwd and /etc/group with root, nonroot (65532)
# and nobody, /tmp 1777, /home/nonroot owned by 65532.
img_base_rootfs() {
  local r=$1
  mkdir -p "$r"/{bin,etc,proc,sys,dev,root,tmp,home/nonroot,var/tmp}
  chmod 0755 "$r" "$r"/{bin,etc,proc,sys,dev,home,var}
  chmod 0700 "$r/root"
  chmod 1777 "$r/tmp" "$r/var/tmp"
  chown 65532:65532 "$r/home/nonroot"
  printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\nnogroup:x:65534:\n' > "$r/etc/group"
  chmod 0644 "$r/etc/passwd" "$r/etc/group"
}

# img_is_static FILE: no ELF interpreter, so the file runs in an image without a libc.
img_is_static() {
  local out
  out=$(LC_ALL=C ldd "$1" 2>&1 || true)
  case "$out" in
    *"not a dynamic executable"* | *"statically linked"*) return 0 ;;
    *) return 1 ;;
  esac
}

img_add_busybox() {
  local r=$1 bb=${BUSYBOX:-/usr/bin/busybox} a
  [ -x "$bb" ] || { echo "images: $bb missing (apt-get install busybox-static)" >&2; return 1; }
  img_is_static "$bb" || { echo "images: $bb is dynamically linked; install busybox-static" >&2; return 1; }
  install -m 0755 "$bb" "$r/bin/busybox"
  for a in $("$bb" --list); do
    [ "$a" = busybox ] || [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"
  done
}

img_add_ca_certs() {
  local r=$1 ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
  [ -f "$ca" ] || return 0
  mkdir -p "$r/etc/ssl/certs"
  install -m 0644 "$ca" "$r/etc/ssl/certs/ca-certificates.crt"
}

# img_busybox REF OUT.tar: busybox as /bin/sh and every applet; runs as root unless the pod says otherwise
# (local-path-provisioner's helper pod needs root to create volume directories).
img_busybox() {
  local ref=$1 out=$2 r
  img_check_ref "$ref" || return 1
  r=$(mktemp -d "${TMPDIR:-/tmp}/img-busybox.XXXXXX")
  img_base_rootfs "$r" && img_add_busybox "$r" &&
    img_pack "$r" "$ref" "$out" null '["/bin/sh"]' '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'
  local rc=$?
  rm -rf "$r"
  return $rc
}

# img_go REF OUT.tar: busybox plus $GOROOT_SRC (default /usr/local/go) at /usr/local/go, for
# offline `go vet|test|build` by a non-root user whose HOME (or GOCACHE/GOMODCACHE) is writable.
img_go() {
  local ref=$1 out=$2 goroot=${GOROOT_SRC:-/usr/local/go} r
  img_check_ref "$ref" || return 1
  [ -x "$goroot/bin/go" ] || { echo "images: no Go toolchain at $goroot" >&2; return 1; }
  r=$(mktemp -d "${TMPDIR:-/tmp}/img-go.XXXXXX")
  img_base_rootfs "$r" && img_add_busybox "$r" && img_add_ca_certs "$r" || { rm -rf "$r"; return 1; }
  mkdir -p "$r/usr/local"
  # test/ and api/ are only for Go's own release checks; everything else is the toolchain.
  tar -C "$(dirname "$goroot")" --exclude="$(basename "$goroot")/test" --exclude="$(basename "$goroot")/api" \
    -cf - "$(basename "$goroot")" | tar -C "$r/usr/local" -xf -
  [ "$(basename "$goroot")" = go ] || mv "$r/usr/local/$(basename "$goroot")" "$r/usr/local/go"
  chown -R 0:0 "$r/usr/local/go"
  local env='["PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","GOROOT=/usr/local/go","GOTOOLCHAIN=local","GOPROXY=off","CGO_ENABLED=0","HOME=/home/nonroot"]'
  img_pack "$r" "$ref" "$out" null '["/bin/sh"]' "$env" 65532:65532
  local rc=$?
  rm -rf "$r"
  return $rc
}

# img_postgres REF OUT.tar: busybox plus this machine's Debian PostgreSQL (server and client:
# initdb, postgres, pg_isready, psql, the libraries they load, share files, time zones), for the
# e2e's database services. `pg-service` initializes a trusting cluster in /tmp/pgdata and runs
# it on 127.0.0.1:5432 as user 65532. Needs `apt-get install postgresql`.
img_postgres() {
  local ref=$1 out=$2 bin ver r f lib
  img_check_ref "$ref" || return 1
  bin=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n 1)
  [ -n "$bin" ] && [ -x "$bin/postgres" ] || { echo "images: no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)" >&2; return 1; }
  ver=$(basename "$(dirname "$bin")")
  r=$(mktemp -d "${TMPDIR:-/tmp}/img-postgres.XXXXXX")
  img_base_rootfs "$r" && img_add_busybox "$r" || { rm -rf "$r"; return 1; }
  mkdir -p "$r/usr/lib/postgresql/$ver/lib" "$r/usr/share/postgresql" "$r/usr/share/zoneinfo" "$r/usr/local/bin"
  cp -a "$bin" "$r/usr/lib/postgresql/$ver/bin"
  # Every module but the JIT's, which would bring LLVM (100 MB) for nothing a test needs.
  find "/usr/lib/postgresql/$ver/lib" -maxdepth 1 -name '*.so' ! -name 'llvmjit*' -exec cp -a {} "$r/usr/lib/postgresql/$ver/lib/" \;
  cp -a "/usr/share/postgresql/$ver" "$r/usr/share/postgresql/$ver"
  cp -a /usr/share/zoneinfo/. "$r/usr/share/zoneinfo/"
  for f in "$r/usr/lib/postgresql/$ver/bin"/* "$r/usr/lib/postgresql/$ver/lib"/*.so; do
    LC_ALL=C ldd "$f" 2> /dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
  done | sort -u | while read -r lib; do
    mkdir -p "$r$(dirname "$lib")"
    [ -e "$r$lib" ] || cp -L "$lib" "$r$lib"
  done
  printf '#!/bin/sh\n# A throwaway server for tests: trust on loopback, data in /tmp.\nset -e\ninitdb -D /tmp/pgdata -U postgres --auth=trust --encoding=UTF8 --locale=C > /tmp/initdb.log 2>&1 || { cat /tmp/initdb.log; exit 1; }\nexec postgres -D /tmp/pgdata -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off "$@"\n' > "$r/usr/local/bin/pg-service"
  chmod 0755 "$r/usr/local/bin/pg-service"
  local env
  env='["PATH=/usr/lib/postgresql/'"$ver"'/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","TZ=UTC","HOME=/home/nonroot"]'
  img_pack "$r" "$ref" "$out" null '["/bin/sh"]' "$env" 65532:65532
  local rc=$?
  rm -rf "$r"
  return $rc
}

# img_binary REF OUT.tar BINARY ENTRYPOINT-JSON: BINARY (static) at the path ENTRYPOINT[0] names.
img_binary() {
  local ref=$1 out=$2 bin=$3 ep=$4 r dest
  img_check_ref "$ref" || return 1
  [ -x "$bin" ] || { echo "images: $bin is not an executable file" >&2; return 1; }
  img_is_static "$bin" || { echo "images: $bin is dynamically linked; build it with CGO_ENABLED=0" >&2; return 1; }
  dest=$(printf '%s' "$ep" | sed -n -E 's/^[[:space:]]*\[[[:space:]]*"([^"]+)".*$/\1/p')
  case "$dest" in
    /*) ;;
    *) echo "images: ENTRYPOINT-JSON must be a JSON array starting with an absolute path, got '$ep'" >&2; return 1 ;;
  esac
  r=$(mktemp -d "${TMPDIR:-/tmp}/img-bin.XXXXXX")
  img_base_rootfs "$r" && img_add_ca_certs "$r" || { rm -rf "$r"; return 1; }
  rmdir "$r/bin"
  mkdir -p "$r$(dirname "$dest")"
  install -m 0755 "$bin" "$r$dest"
  # IMG_EXTRA_BINARIES="SRC=/DEST ...": more static binaries in the same image.
  for extra in ${IMG_EXTRA_BINARIES:-}; do
    img_is_static "${extra%%=*}" || { echo "images: ${extra%%=*} is not a static executable" >&2; rm -rf "$r"; return 1; }
    install -m 0755 "${extra%%=*}" "$r${extra#*=}"
  done
  img_pack "$r" "$ref" "$out" "$ep" null '["PATH=/usr/local/bin:/usr/bin:/bin","SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]' 65532:65532
  local rc=$?
  rm -rf "$r"
  return $rc
}

# img_pause REF OUT.tar: reaps children, exits on SIGINT/SIGTERM.
img_pause() {
  local ref=$1 out=$2 r
  img_check_ref "$ref" || return 1
  command -v gcc > /dev/null || { echo "images: gcc is needed for the pause image" >&2; return 1; }
  r=$(mktemp -d "${TMPDIR:-/tmp}/img-pause.XXXXXX")
  mkdir -p "$r/rootfs"
  cat > "$r/pause.c" << 'EOF'
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void on_term(int s) { (void)s; _exit(0); }
static void on_chld(int s) { (void)s; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
  struct sigaction t = {0}, c = {0};
  t.sa_handler = on_term; sigaction(SIGINT, &t, NULL); sigaction(SIGTERM, &t, NULL);
  c.sa_handler = on_chld; c.sa_flags = SA_NOCLDSTOP; sigaction(SIGCHLD, &c, NULL);
  for (;;) pause();
}
EOF
  gcc -Os -static -s -o "$r/rootfs/pause" "$r/pause.c" &&
    img_pack "$r/rootfs" "$ref" "$out" '["/pause"]' null '[]' 65535:65535
  local rc=$?
  rm -rf "$r"
  return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  umask 022
  usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
  [ $# -ge 3 ] || usage
  what=$1; shift
  case "$what" in
    busybox) [ $# -eq 2 ] || usage; img_busybox "$@" ;;
    go) [ $# -eq 2 ] || usage; img_go "$@" ;;
    binary) [ $# -eq 4 ] || usage; img_binary "$@" ;;
    pause) [ $# -eq 2 ] || usage; img_pause "$@" ;;
    postgres) [ $# -eq 2 ] || usage; img_postgres "$@" ;;
    rootfs) [ $# -ge 3 ] && [ $# -le 5 ] || usage; img_pack "$1" "$2" "$3" "${4:-null}" "${5:-null}" ;;
    *) usage ;;
  esac
fi
