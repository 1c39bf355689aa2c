#!/usr/bin/env bash
# Make sure graphviz (the `dot` program, used to draw the architecture figure) is installed.
exec "$(dirname "$0")/ensure-os-package.sh" dot graphviz "or use the conda environment in environment.yml"
