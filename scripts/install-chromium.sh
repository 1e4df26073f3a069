#!/usr/bin/env bash
# Makes Debian's Chromium available at /usr/bin/chromium for the browser tests
# (tests/tests/web_chromium.rs drives it with playwright-core; Playwright's own
# browser download does not work here).
#
# - /usr/bin/chromium present: exits 0 at once, printing nothing.
# - Otherwise: installs Debian's `chromium` package with apt-get (as root, or
#   through sudo; with no terminal, only passwordless sudo).
#
# Usage: scripts/install-chromium.sh
set -euo pipefail

die() { echo "install-chromium: $*" >&2; exit 1; }
say() { echo "install-chromium: $*"; }

bin=/usr/bin/chromium
if [[ -x "$bin" ]]; then exit 0; fi

howto="install it by hand (Debian/Ubuntu: 'apt-get install chromium' as root) so that $bin exists"
command -v apt-get >/dev/null 2>&1 || die "$bin is missing and there is no apt-get on this host: $howto"

as_root=()
if [[ $EUID != 0 ]]; then
  command -v sudo >/dev/null 2>&1 ||
    die "$bin is missing, and installing it needs root but sudo is missing: $howto"
  # With no terminal to ask for a password on (CI), fail rather than hang.
  if [[ -t 0 ]]; then
    as_root=(sudo --)
  else
    sudo -n true 2>/dev/null ||
      die "$bin is missing, and installing it needs root, but sudo wants a password and there is no terminal to ask on: run 'sudo apt-get install chromium' once, or $howto"
    as_root=(sudo -n --)
  fi
fi

log="$(mktemp "${TMPDIR:-/tmp}/install-chromium.XXXXXX.log")"
apt() { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q "$@" >>"$log" 2>&1; }
failed() { # what
  tail -20 "$log" >&2
  die "$1 failed (output above, full log $log). Fix apt (network, sources, root/sudo rights), or $howto"
}

say "installing Debian's chromium package with apt-get${as_root:+ (through sudo)}"
started=$SECONDS
# A fresh container often has no package lists yet; update only when needed.
if ! apt install --no-install-recommends chromium; then
  apt update || failed "apt-get update"
  apt install --no-install-recommends chromium || failed "apt-get install chromium"
fi
[[ -x "$bin" ]] || die "apt-get installed chromium, but there is still no $bin; $howto"
rm -f "$log"
say "installed $("$bin" --version 2>/dev/null || echo Chromium) in $((SECONDS - started)) s"
