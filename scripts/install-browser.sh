#!/usr/bin/env bash
# Installs headless Chromium + chromedriver (Debian packages) for the report's browser test.
# Does nothing when /usr/bin/chromium is already there. Needs root (or sudo) for apt-get.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "install-browser: chromium already installed ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-browser: need root or sudo to apt-get install chromium chromium-driver" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: apt-get not found; install Chromium and chromedriver so that" \
         "/usr/bin/chromium and /usr/bin/chromedriver exist, then rerun the tests" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core
/usr/bin/chromium --version
