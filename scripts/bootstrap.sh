#!/usr/bin/env bash
# Installs what `make run` and `make test` need and is missing: Debian packages,
# a virtual environment from a Python whose sqlite3 can load extensions, and the
# locked Python requirements. Safe to run again; does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
# Libraries GeoDjango loads (GDAL, GEOS, PROJ, SpatiaLite), gettext for the
# translation catalogues, the venv module for Debian's Python, and the CJK font
# that certificate PDFs embed.
DEBIAN_PACKAGES=(libgdal32 libgeos-c1v5 libproj25 libsqlite3-mod-spatialite gettext
  python3 python3-venv fonts-wqy-microhei ${EXTRA_DEBIAN_PACKAGES:-})

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

missing_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || printf '%s ' "$pkg"
  done
}

install_debian_packages() {
  local missing
  missing=$(missing_packages "$@")
  [ -z "$missing" ] && return 0
  command -v dpkg-query >/dev/null || die "This set-up needs Debian 12 (dpkg/apt); install by hand: $missing"
  if [ "$(id -u)" -ne 0 ]; then
    die "Missing Debian packages; as root run: apt-get install -y $missing"
  fi
  say "installing Debian packages: $missing"
  # Refresh the package lists once when apt does not know a package yet.
  local pkg
  for pkg in $missing; do
    if ! apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      apt-get update -q || die "apt-get update failed: check the apt sources and network, then run again."
      break
    fi
  done
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing \
    || die "Could not install the Debian packages: $missing (apt-get install -y $missing)."
}

# A Python 3.11 whose sqlite3 can load extensions (SpatiaLite) and that has venv.
python_is_suitable() {
  "$1" - <<'PY' 2>/dev/null
import sqlite3, sys, venv, ensurepip  # noqa
assert sys.version_info[:2] == (3, 11)
assert hasattr(sqlite3.connect(":memory:"), "enable_load_extension")
PY
}

choose_python() {
  local candidate
  for candidate in ${PYTHON:-} /usr/bin/python3.11 /usr/bin/python3 python3.11 python3; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    if python_is_suitable "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

install_debian_packages "${DEBIAN_PACKAGES[@]}"

if [ ! -x "$VENV/bin/python" ] || ! python_is_suitable "$VENV/bin/python"; then
  python=$(choose_python) || die "No Python 3.11 whose sqlite3 can load extensions was found: install Debian's python3 and python3-venv (apt-get install python3 python3-venv)."
  say "creating $VENV with $python"
  rm -rf "$VENV"
  "$python" -m venv "$VENV"
fi

lock_hash=$(sha256sum requirements.lock | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$lock_hash" ]; then
  say "installing the locked Python requirements"
  "$VENV/bin/python" -m pip install -q --require-hashes -r requirements.lock \
    || die "pip could not install requirements.lock: check access to the Python package index."
  echo "$lock_hash" > "$VENV/.requirements.sha256"
fi

mkdir -p var/static var/media

# Compiled catalogues are build products, not sources.
"$VENV/bin/python" manage.py compilemessages --ignore=.venv -v 0
