#!/usr/bin/env bash
# Builds dsv3 if needed (an up-to-date build is a no-op), then serves the shipped default model
# with its web chat page. Arguments go to `dsv3 serve` (e.g. --port 9000, --host 0.0.0.0).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target dsv3
exec build/dsv3 serve "$@"
