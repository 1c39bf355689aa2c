#!/usr/bin/env bash
# Make sure graphviz (the `dot` program, used to draw the architecture figure) is installed.
set -euo pipefail
command -v dot >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "graphviz is missing: installing it with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq graphviz >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq graphviz >/dev/null; }
  exit 0
fi
echo "graphviz is missing: install the OS package 'graphviz' (apt-get install graphviz, dnf install graphviz," \
     "brew install graphviz), or use the conda environment in environment.yml" >&2
exit 1
