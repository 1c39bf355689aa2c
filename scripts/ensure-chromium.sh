#!/usr/bin/env bash
# Make sure Chromium is installed: the browser test (tests/test_browser.py) drives it headless through JupyterLab.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium is missing: installing it with apt-get (Debian's package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
  exit 0
fi
echo "chromium is missing: install the OS package 'chromium' (apt-get install chromium, dnf install chromium)," \
     "which the browser test drives headless" >&2
exit 1
