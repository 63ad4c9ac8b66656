#!/usr/bin/env bash
# Install openkvs into ./.venv on a Debian/Ubuntu machine.
#   scripts/install.sh          the service (installs ffmpeg and python3-venv if missing)
#   scripts/install.sh --test   the service plus the test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

need=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# The tests also run the README's curl example.
[ -n "$extras" ] && ! command -v curl >/dev/null 2>&1 && need+=(curl)
# The console's browser tests drive the system Chromium (Playwright never downloads one).
[ -n "$extras" ] && ! command -v chromium >/dev/null 2>&1 && need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "installing system packages: ${need[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "openkvs needs Python 3.11 or newer (found $(python3 --version))" >&2; exit 1; }

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".${extras}"

# The web console plays HLS outputs with hls.js, served by openkvs itself (never from a CDN).
# It is taken from the npm registry when npm is available; without it the console still
# works and plays HLS only where the browser does natively.
vendor=src/openkvs/console/static/vendor
if [ ! -f "$vendor/hls.min.js" ] && command -v npm >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    if (cd "$tmp" && npm pack --silent hls.js@1 >/dev/null 2>&1) \
        && tar -xzf "$tmp"/hls.js-*.tgz -C "$tmp" package/dist/hls.min.js; then
        mkdir -p "$vendor"
        cp "$tmp/package/dist/hls.min.js" "$vendor/hls.min.js"
    else
        echo "hls.js could not be fetched: the console plays HLS only where the browser does" >&2
    fi
    rm -rf "$tmp"
fi
echo "openkvs installed in $(pwd)/.venv"
