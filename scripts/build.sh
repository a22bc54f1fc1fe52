#!/usr/bin/env bash
# Configures and builds one preset-like build directory.
#   scripts/build.sh            -> build/          (Release)
#   scripts/build.sh asan       -> build-asan/     (ASan + UBSan, RelWithDebInfo)
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-release}"
jobs="${DSV3_JOBS:-$(nproc)}"
case "$kind" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan)    dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSV3_SANITIZE=ON -DDSV3_BENCH=OFF) ;;
  *) echo "unknown build kind: $kind" >&2; exit 2 ;;
esac
# Warnings are errors in CI for the Release build; sanitizer builds make GCC emit false
# -Wmaybe-uninitialized positives inside the standard library, so they only warn.
if [ "${CI:-}" = "true" ] && [ "$kind" = release ]; then flags+=(-DDSV3_WERROR=ON); fi
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j"$jobs"
