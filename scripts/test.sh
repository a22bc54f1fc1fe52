#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the Release build first, then the
# ASan+UBSan build of the same tests (minus the browser test and the largest kernel sweeps,
# which exercise arithmetic, not memory, and take minutes under the sanitizers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
(cd build && OMP_WAIT_POLICY=passive ctest --output-on-failure -j2 --timeout 900)
scripts/build.sh asan
(cd build-asan && OMP_WAIT_POLICY=passive ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure -j2 --timeout 1200 -LE e2e \
   -E 'Matmul\.(EdgeShapes|TransposedEdgeShapes|LargeShapes)')
