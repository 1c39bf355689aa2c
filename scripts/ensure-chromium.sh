#!/usr/bin/env bash
# Make sure Chromium is installed: the browser test (tests/test_browser.py) drives it headless through JupyterLab.
exec "$(dirname "$0")/ensure-os-package.sh" chromium chromium "the browser test drives it headless"
