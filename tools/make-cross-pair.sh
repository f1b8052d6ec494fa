#!/usr/bin/env bash
# Produces, once, a draft model over ANOTHER tokenizer than make-model-pair.sh's models, for
# cross-tokenizer speculative and contrastive decoding tests and benchmarks: trained on the
# same corpus (data/kjv/train.txt) with the same shape and settings as that draft, over the
# unigram 2000-piece fixture tokenizer (kjv_unigram2000.model) instead of the BPE 4000 one.
# Cached outside the repository under ~/.cache/tandem/models/cross-<key>/:
#   draft-unigram.gguf  the trained draft (tandem-train-gguf)
#   vocab.model         its sentencepiece tokenizer
#   metrics.jsonl       training figures and held-out perplexity (per unigram token: not
#                       comparable with the BPE models' figures)
# <key> hashes every parameter below, the tool version and the sources of the tools, the
# tokenizer and the corpus, as make-model-pair.sh does; an existing complete folder is
# reused. Prints KEY=PATH lines on stdout (CROSS_DIR, CROSS_DRAFT, CROSS_VOCAB).
#
# Usage: tools/make-cross-pair.sh BUILD_DIR
#   BUILD_DIR: a tandem build with llama.cpp (build the targets tandem-train-gguf
#   tandem-eval-gguf tandem_spm_fixture_models).
# Environment (defaults in brackets, the same as make-model-pair.sh's draft): DRAFT_EMBD [64]
#   DRAFT_LAYER [2] DRAFT_HEAD [4] DRAFT_HEAD_KV [2] DRAFT_FF [256] CTX [256] LR [1e-3]
#   STEPS [3000] MAX_SECONDS [1800] TRAIN_SEED [1] TRAIN_THREADS [2] THREADS (evaluation) [1]
#   TANDEM_MODEL_CACHE [~/.cache/tandem/models].
set -euo pipefail

tool_version=1
build=${1:?usage: make-cross-pair.sh BUILD_DIR}
build=$(cd "$build" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${DRAFT_EMBD:=64}" "${DRAFT_LAYER:=2}" "${DRAFT_HEAD:=4}" "${DRAFT_HEAD_KV:=2}"
: "${DRAFT_FF:=256}" "${CTX:=256}" "${LR:=1e-3}" "${STEPS:=3000}" "${MAX_SECONDS:=1800}"
: "${TRAIN_SEED:=1}" "${THREADS:=1}" "${TRAIN_THREADS:=2}"
cache=${TANDEM_MODEL_CACHE:-$HOME/.cache/tandem/models}

train=$build/tools/tandem-train-gguf
evalt=$build/tools/tandem-eval-gguf
spm=$build/fixtures/kjv_unigram2000.model
for f in "$train" "$evalt" "$spm"; do
  [[ -e $f ]] || { echo "make-cross-pair: $f not found (build it first)" >&2; exit 1; }
done

params="v=$tool_version cross=unigram2000 draft=${DRAFT_EMBD}x${DRAFT_LAYER}h${DRAFT_HEAD}kv${DRAFT_HEAD_KV}ff${DRAFT_FF}"
params+=" ctx=$CTX lr=$LR steps=$STEPS max_s=$MAX_SECONDS train_seed=$TRAIN_SEED"
params+=" train_threads=$TRAIN_THREADS"
sources=$(cd "$root" && sha256sum tools/gguf_writer.hpp tools/model_eval.hpp \
  tools/tandem-train-gguf.cpp tools/tandem-eval-gguf.cpp data/kjv/train.txt \
  data/kjv/heldout.txt "$spm" | awk '{print $1}' | tr '\n' ' ')
key=$(printf '%s\n%s\n' "$params" "$sources" | sha256sum | cut -c1-16)
dir=$cache/cross-$key
mkdir -p "$cache"

if [[ ! -f $dir/complete ]]; then
  tmp=$(mktemp -d "$cache/.tmp-cross-$key-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  printf '%s\n' "$params" >"$tmp/params.txt"
  cp "$spm" "$tmp/vocab.model"
  echo "make-cross-pair: training the draft ($params)" >&2
  "$train" --spm "$spm" --train "$root/data/kjv/train.txt" --heldout "$root/data/kjv/heldout.txt" \
    --out "$tmp/draft-unigram.gguf" --n-embd "$DRAFT_EMBD" --n-layer "$DRAFT_LAYER" \
    --n-head "$DRAFT_HEAD" --n-head-kv "$DRAFT_HEAD_KV" --n-ff "$DRAFT_FF" --ctx "$CTX" \
    --lr "$LR" --max-steps "$STEPS" --max-seconds "$MAX_SECONDS" --seed "$TRAIN_SEED" \
    --threads "$TRAIN_THREADS" >"$tmp/metrics.jsonl"
  "$evalt" --model "$tmp/draft-unigram.gguf" --heldout "$root/data/kjv/heldout.txt" \
    --threads "$THREADS" >>"$tmp/metrics.jsonl"
  sed -i "s|$tmp|$dir|g" "$tmp/metrics.jsonl"
  touch "$tmp/complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  trap - EXIT
fi

cat "$dir/metrics.jsonl" >&2
echo "CROSS_DIR=$dir"
echo "CROSS_DRAFT=$dir/draft-unigram.gguf"
echo "CROSS_VOCAB=$dir/vocab.model"
