#!/usr/bin/env bash
# Fails when git tracks a build output: a file over 1 MiB, or an executable binary (ELF,
# Mach-O, PE or a Go archive), whatever its name. CI runs it; so does `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
max=$((1 << 20))
bad=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  size=$(stat -c %s "$f")
  if [ "$size" -gt "$max" ]; then
    echo "check-tracked: $f is $size bytes, over 1 MiB: keep build outputs and large data out of git" >&2
    bad=1
    continue
  fi
  magic=$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')
  case "$magic" in
    7f454c46 | cffaedfe | cefaedfe | feedfacf | feedface | cafebabe | 4d5a*)
      echo "check-tracked: $f is an executable binary (magic $magic): build it, do not commit it" >&2
      bad=1
      ;;
  esac
done < <(git ls-files -z)
exit $bad
