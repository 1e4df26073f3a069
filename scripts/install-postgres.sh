#!/usr/bin/env bash
# Makes PostgreSQL's binaries (initdb, pg_ctl, postgres, createdb, psql) available
# to the tests, which start throwaway clusters from them
# (proofpool_devtools::Postgres). The code looks in $PROOFPOOL_PG_BIN if set,
# else in the highest /usr/lib/postgresql/<version>/bin, where Debian puts them.
#
# - Binaries present: exits 0 at once, printing nothing.
# - Otherwise: installs Debian's `postgresql` package with apt-get (as root, or
#   through sudo). Debian's package also creates the `postgres` system user,
#   which the tests run initdb and pg_ctl as when they run as root. Its
#   maintainer scripts may also create and start the system's own cluster on
#   port 5432; the tests do not use it.
#
# Usage: scripts/install-postgres.sh
set -euo pipefail

die() { echo "install-postgres: $*" >&2; exit 1; }
say() { echo "install-postgres: $*"; }

# The bin dir the tests would use, or nothing.
find_bin() {
  local dir
  if [[ -n "${PROOFPOOL_PG_BIN:-}" ]]; then
    [[ -x "$PROOFPOOL_PG_BIN/initdb" && -x "$PROOFPOOL_PG_BIN/pg_ctl" ]] && echo "$PROOFPOOL_PG_BIN"
    return 0
  fi
  while IFS= read -r dir; do
    if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then echo "$dir"; return 0; fi
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
}

if [[ -n "$(find_bin)" ]]; then exit 0; fi
if [[ -n "${PROOFPOOL_PG_BIN:-}" ]]; then
  die "PROOFPOOL_PG_BIN=$PROOFPOOL_PG_BIN has no executable initdb and pg_ctl: point it at PostgreSQL's bin dir, or unset it to use Debian's /usr/lib/postgresql/<version>/bin"
fi

howto="install PostgreSQL's server binaries by hand (Debian/Ubuntu: 'apt-get install postgresql' as root), or set PROOFPOOL_PG_BIN to a dir that holds initdb, pg_ctl, postgres, createdb and psql"
command -v apt-get >/dev/null 2>&1 ||
  die "no /usr/lib/postgresql/*/bin/{initdb,pg_ctl} and no apt-get on this host: $howto"

as_root=()
if [[ $EUID != 0 ]]; then
  command -v sudo >/dev/null 2>&1 ||
    die "PostgreSQL is not installed, and installing it needs root but sudo is missing: $howto"
  # With no terminal to ask for a password on (CI), fail rather than hang.
  if [[ -t 0 ]]; then
    as_root=(sudo --)
  else
    sudo -n true 2>/dev/null ||
      die "PostgreSQL is not installed, and installing it needs root, but sudo wants a password and there is no terminal to ask on: run 'sudo apt-get install postgresql' once, or $howto"
    as_root=(sudo -n --)
  fi
fi

log="$(mktemp "${TMPDIR:-/tmp}/install-postgres.XXXXXX.log")"
apt() { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q "$@" >>"$log" 2>&1; }
failed() { # what
  tail -20 "$log" >&2
  die "$1 failed (output above, full log $log). Fix apt (network, sources, root/sudo rights), or $howto"
}

say "installing Debian's postgresql package with apt-get${as_root:+ (through sudo)}"
started=$SECONDS
# A fresh container often has no package lists yet; update only when needed.
if ! apt install --no-install-recommends postgresql; then
  apt update || failed "apt-get update"
  apt install --no-install-recommends postgresql || failed "apt-get install postgresql"
fi

bin="$(find_bin)"
[[ -n "$bin" ]] ||
  die "apt-get installed postgresql, but there is still no /usr/lib/postgresql/*/bin/{initdb,pg_ctl}; $howto"
getent passwd postgres >/dev/null 2>&1 ||
  say "warning: there is no 'postgres' system user; tests run as root need it to run initdb and pg_ctl (or run the tests as a non-root user)"
rm -f "$log"
say "installed $("$bin/postgres" --version 2>/dev/null || echo PostgreSQL) in $((SECONDS - started)) s; binaries in $bin"
