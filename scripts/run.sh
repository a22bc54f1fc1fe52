#!/usr/bin/env bash
# Builds dsv3 if needed, then serves the shipped default model with its web chat page.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -x build/dsv3 ] || scripts/build.sh release
exec build/dsv3 serve "$@"
