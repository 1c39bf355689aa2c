#!/usr/bin/env bash
# Make sure an OS package is installed: ensure-os-package.sh PROGRAM PACKAGE WHY
# Found on the PATH: nothing to do. Missing, as root with apt-get: installed. Otherwise: say what to install.
set -euo pipefail
program=$1 package=$2 why=$3
command -v "$program" >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "$package is missing: installing it with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "$package" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$package" >/dev/null; }
  exit 0
fi
echo "$package is missing: install the OS package '$package' (apt-get install $package, dnf install $package," \
     "brew install $package); $why" >&2
exit 1
