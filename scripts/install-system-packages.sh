#!/usr/bin/env bash
# Install the Debian packages the test suite needs, skipping any already installed.
# Safe to run repeatedly: apt-get runs only when a package is missing.
set -euo pipefail

# Space-separated Debian package names. The browser tests drive Debian's chromium
# through Playwright (no browser download at run time), and their screenshots of the
# Chinese pages need a CJK font (fonts-wqy-zenhei). gettext's msgfmt compiles the
# page translations (`make messages`) and checks the committed catalogue in the tests.
PACKAGES="chromium fonts-wqy-zenhei gettext"

missing=()
for package in $PACKAGES; do
    if ! dpkg -s "$package" >/dev/null 2>&1; then
        missing+=("$package")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "install-system-packages: missing Debian packages: ${missing[*]}." \
        "Run this script as root, or install them with apt-get." >&2
    exit 1
fi

echo "install-system-packages: installing ${missing[*]}"
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
