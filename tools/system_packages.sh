#!/usr/bin/env bash
# Installs the Debian packages that the tests drive for real (browsers,
# Prometheus tooling). Run as root by .ci/run; on a developer machine it
# installs only what is missing, and says what it would need otherwise.
set -euo pipefail
packages=(prometheus prometheus-alertmanager chromium)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "system_packages: need root to install: ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
