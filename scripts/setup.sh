#!/usr/bin/env bash
# Set up a loaphuong checkout: Debian packages, then .venv with the package installed editable.
#
#   scripts/setup.sh          runtime: controller + agent
#   scripts/setup.sh --test   also what the tests need (socat, sox, pytest, mypy, ruff...)
#
# Safe to re-run: apt runs only when a package is missing, pip only when pyproject.toml changed.
# Environment: PYTHON=/path/to/python3.x to choose the interpreter (default: python3 on PATH).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

WITH_TEST=0
for arg in "$@"; do
    case "$arg" in
        --test) WITH_TEST=1 ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup: unknown argument: $arg (use --test)" >&2; exit 2 ;;
    esac
done

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- Debian packages ---------------------------------------------------------------------------
PKGS=(mosquitto mosquitto-clients espeak-ng libespeak-ng1 ffmpeg opus-tools mpv alsa-utils python3-venv
      fonts-dejavu-core)  # the LED sign font and the monthly report PDF's (Vietnamese coverage; licence in docs/signs.md)
PKGS+=(icecast2)  # the live-audio hub (phát trực tiếp, docs/live.md); loaphuong writes its own config
# The console's htmx comes from the npm registry (below); Debian's nodejs/npm when the machine has no npm.
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)
if [[ $WITH_TEST == 1 ]]; then
    PKGS+=(socat sox procps)
    PKGS+=(systemd)  # systemd-analyze verify checks the unit files (tests/test_systemd.py); no systemd needs to run
    PKGS+=(chromium)  # the console under Playwright (executable_path; never `playwright install`)
    PKGS+=(iproute2)  # ip netns: WS-Discovery tests run in their own network namespaces
    # A real H.264 RTSP camera stream (GStreamer's RTSP server, x264); PyGObject builds against these.
    PKGS+=(gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
           gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-x gstreamer1.0-libav
           libgirepository1.0-dev libcairo2-dev pkg-config gcc python3-dev)
fi

if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    missing=()
    for p in "${PKGS[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || missing+=("$p")
    done
    if (( ${#missing[@]} > 0 )); then
        if [[ $(id -u) == 0 ]]; then
            SUDO=""
        elif command -v sudo >/dev/null 2>&1; then
            SUDO=sudo
        else
            die "need root or sudo to install: ${missing[*]}"
        fi
        say "installing ${missing[*]}"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
else
    say "warning: not a Debian-like system (no dpkg-query/apt-get); install by hand: ${PKGS[*]}"
fi

# --- Python >= 3.11 and .venv ------------------------------------------------------------------
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null 2>&1 || die "$PY not found on PATH; install Python >= 3.11 (Debian 12: apt-get install python3)"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || die "$PY is Python $("$PY" -c 'import platform; print(platform.python_version())'); loaphuong needs >= 3.11 (set PYTHON=/path/to/python3.11)"

VENV=.venv
venv_ok() {
    [[ -x $VENV/bin/python ]] \
        && "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null \
        && "$VENV/bin/python" -m pip --version >/dev/null 2>&1
}
if ! venv_ok; then
    if [[ -e $VENV ]]; then
        say "$VENV is broken; recreating"
        rm -rf "$VENV"
    fi
    say "creating $VENV with $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    "$PY" -m venv "$VENV" || die "could not create $VENV (on Debian/Ubuntu: apt-get install python3-venv)"
fi

# --- the package, editable ---------------------------------------------------------------------
if [[ $WITH_TEST == 1 ]]; then
    EXTRAS=controller,agent,test
else
    EXTRAS=controller,agent
fi
STAMP=$VENV/.stamp-$EXTRAS
TEST_STAMP=$VENV/.stamp-controller,agent,test   # a test install is a superset of the runtime one

if [[ $STAMP -nt pyproject.toml ]] || [[ $WITH_TEST == 0 && $TEST_STAMP -nt pyproject.toml ]]; then
    say "$VENV up to date ($EXTRAS)"
else
    say "installing loaphuong[$EXTRAS] into $VENV"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"
    touch "$STAMP"
fi
if [[ $WITH_TEST == 1 ]] && ! "$VENV/bin/python" -c 'import ipycam' >/dev/null 2>&1; then
    # ipycam (a third-party virtual ONVIF camera for the tests) pins full OpenCV; its runtime needs are numpy
    # and OpenCV, which the extras already bring as opencv-python-headless, so it goes in without its deps.
    say "installing ipycam 1.3.0 (test camera, --no-deps)"
    "$VENV/bin/python" -m pip install -q --no-deps ipycam==1.3.0
fi
# --- the console's front-end packages (npm), into a git-ignored folder ---------------------------
# htmx and its SSE extension are third-party files: installed from the npm registry at set-up, never
# committed. Versions are pinned here; bump them together with the console's tests.
VENDOR=controller/static/vendor
HTMX=2.0.11
HTMX_SSE=2.2.4
if [[ ! -f $VENDOR/.stamp-$HTMX-$HTMX_SSE ]]; then
    command -v npm >/dev/null 2>&1 || die "npm not found; install Debian's nodejs and npm"
    say "installing htmx.org@$HTMX and htmx-ext-sse@$HTMX_SSE from npm into $VENDOR"
    npmdir=$(mktemp -d)
    trap 'rm -rf "$npmdir"' EXIT
    (cd "$npmdir" && npm install --silent --no-audit --no-fund --no-save --ignore-scripts \
        "htmx.org@$HTMX" "htmx-ext-sse@$HTMX_SSE" >/dev/null) || die "npm install of htmx failed"
    rm -rf "$VENDOR"
    mkdir -p "$VENDOR"
    cp "$npmdir/node_modules/htmx.org/dist/htmx.min.js" "$VENDOR/htmx.min.js"
    cp "$npmdir/node_modules/htmx-ext-sse/dist/sse.min.js" "$VENDOR/htmx-ext-sse.min.js" 2>/dev/null \
        || cp "$npmdir/node_modules/htmx-ext-sse/sse.js" "$VENDOR/htmx-ext-sse.min.js"
    cp "$npmdir/node_modules/htmx.org/LICENSE" "$VENDOR/htmx.LICENSE"
    touch "$VENDOR/.stamp-$HTMX-$HTMX_SSE"
fi
# Leaflet draws the console's map (/console/map); the tiles come from LP_MAP_TILE_URL, if set (docs/map.md).
# Its own folder and stamp: the htmx step above empties $VENDOR when htmx changes, and this one follows.
LEAFLET=1.9.4
if [[ ! -f $VENDOR/leaflet/.stamp-$LEAFLET ]]; then
    command -v npm >/dev/null 2>&1 || die "npm not found; install Debian's nodejs and npm"
    say "installing leaflet@$LEAFLET from npm into $VENDOR/leaflet"
    leafletdir=$(mktemp -d)
    (cd "$leafletdir" && npm install --silent --no-audit --no-fund --no-save --ignore-scripts \
        "leaflet@$LEAFLET" >/dev/null) || { rm -rf "$leafletdir"; die "npm install of leaflet failed"; }
    rm -rf "$VENDOR/leaflet"
    mkdir -p "$VENDOR/leaflet/images"
    cp "$leafletdir/node_modules/leaflet/dist/leaflet.js" "$leafletdir/node_modules/leaflet/dist/leaflet.css" \
        "$VENDOR/leaflet/"
    cp "$leafletdir/node_modules/leaflet/dist/images/"*.png "$VENDOR/leaflet/images/"
    cp "$leafletdir/node_modules/leaflet/LICENSE" "$VENDOR/leaflet/LICENSE"
    rm -rf "$leafletdir"
    touch "$VENDOR/leaflet/.stamp-$LEAFLET"
fi
say "ok"
