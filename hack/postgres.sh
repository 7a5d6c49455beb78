#!/usr/bin/env bash
# Prints the bin directory of Debian's newest installed PostgreSQL (initdb, postgres,
# pg_isready, psql) for the archive's tests, which start a throwaway server of their
# own. Fails, saying what to install, when there is none.
set -euo pipefail
dir=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n 1 || true)
if [ -z "$dir" ] || [ ! -x "$dir/initdb" ] || [ ! -x "$dir/postgres" ]; then
  echo "postgres: no PostgreSQL under /usr/lib/postgresql; install it with" \
    "'apt-get install -y --no-install-recommends postgresql' (or set FLOWCI_POSTGRES to a directory holding initdb, postgres, pg_isready and psql)" >&2
  exit 1
fi
echo "$dir"
