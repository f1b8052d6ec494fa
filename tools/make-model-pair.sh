#!/usr/bin/env bash
# Produces, once, tandem's real model pairs for speculative-decoding tests and benchmarks,
# cached outside the repository under ~/.cache/tandem/models/<key>/:
#   draft.gguf          a small llama model trained on data/kjv/train.txt (tandem-train-gguf)
#   target-close.gguf   a larger target grown from it with little noise (acceptance near 1)
#   target-mid.gguf     the same growth with more noise (acceptance near 0.6)
#   target-random.gguf  an independent random-weight model of the target's size (disagrees)
#   target-trained.gguf a larger model (128x4) trained on its own on the same corpus, for
#                       the same steps as the draft: better than the draft (lower held-out
#                       perplexity); its acceptance against the draft is natural, not set
#   vocab.model         the sentencepiece tokenizer whose vocabulary all four share
#   metrics.jsonl       training figures, each model's held-out perplexity and each
#                       target's greedy acceptance rate against the draft
# <key> hashes every parameter below, the tool version and the sources of the tools, the
# tokenizer and the corpus: a change to any of them makes a new folder; an existing
# complete folder is reused. The trained draft is also cached on its own, in
# draft-<draft key>/ (the draft's parameters and sources only), and so is the trained
# target, in trained-<trained key>/, so pairs that differ in the grown targets or the noise
# do not train again. Prints KEY=PATH lines on stdout.
#
# Usage: tools/make-model-pair.sh BUILD_DIR
#   BUILD_DIR: a tandem build with llama.cpp (tools/tandem-train-gguf, tandem-grow-gguf,
#   tandem-eval-gguf, tandem-make-gguf, fixtures/kjv_bpe4000.model: build the targets
#   tandem-train-gguf tandem-grow-gguf tandem-eval-gguf tandem-make-gguf
#   tandem_spm_fixture_models).
# Environment (defaults in brackets): DRAFT_EMBD [64] DRAFT_LAYER [2] DRAFT_HEAD [4]
#   DRAFT_HEAD_KV [2] DRAFT_FF [256] CTX [256] LR [1e-3] STEPS [3000] MAX_SECONDS [900]
#   TARGET_EMBD [512] TARGET_LAYER [8] TARGET_FF [1024] NOISE_CLOSE [0.05] NOISE_MID [1.25]
#   GROW_SEED [1] TRAIN_SEED [1] RANDOM_SEED [2] TRAIN_THREADS [2] THREADS (evaluation) [1]
#   TRAINED_EMBD [128] TRAINED_LAYER [4] TRAINED_HEAD [8] TRAINED_HEAD_KV [4]
#   TRAINED_FF [512] TRAINED_LR [5e-4] TRAINED_STEPS [STEPS] TRAINED_MAX_SECONDS [2400]
#   TRAINED_SEED [3] TRAINED_THREADS [1] TANDEM_MODEL_CACHE
#   [~/.cache/tandem/models]. Training is bounded by STEPS (MAX_SECONDS is a safety
#   stop: when it ends training early the figures say so in metrics.jsonl).
set -euo pipefail

tool_version=1
build=${1:?usage: make-model-pair.sh BUILD_DIR}
build=$(cd "$build" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${DRAFT_EMBD:=64}" "${DRAFT_LAYER:=2}" "${DRAFT_HEAD:=4}" "${DRAFT_HEAD_KV:=2}"
: "${DRAFT_FF:=256}" "${CTX:=256}" "${LR:=1e-3}" "${STEPS:=3000}" "${MAX_SECONDS:=900}"
: "${TARGET_EMBD:=512}" "${TARGET_LAYER:=8}" "${TARGET_FF:=1024}"
: "${NOISE_CLOSE:=0.05}" "${NOISE_MID:=1.25}" "${GROW_SEED:=1}" "${TRAIN_SEED:=1}"
: "${RANDOM_SEED:=2}" "${THREADS:=1}" "${TRAIN_THREADS:=2}"
: "${TRAINED_EMBD:=128}" "${TRAINED_LAYER:=4}" "${TRAINED_HEAD:=8}" "${TRAINED_HEAD_KV:=4}"
: "${TRAINED_FF:=512}" "${TRAINED_LR:=5e-4}" "${TRAINED_STEPS:=$STEPS}"
: "${TRAINED_MAX_SECONDS:=2400}"
: "${TRAINED_SEED:=3}" "${TRAINED_THREADS:=1}"
cache=${TANDEM_MODEL_CACHE:-$HOME/.cache/tandem/models}

train=$build/tools/tandem-train-gguf
grow=$build/tools/tandem-grow-gguf
evalt=$build/tools/tandem-eval-gguf
make=$build/tools/tandem-make-gguf
spm=$build/fixtures/kjv_bpe4000.model
for f in "$train" "$grow" "$evalt" "$make" "$spm"; do
  [[ -e $f ]] || { echo "make-model-pair: $f not found (build it first)" >&2; exit 1; }
done

draft_params="v=$tool_version draft=${DRAFT_EMBD}x${DRAFT_LAYER}h${DRAFT_HEAD}kv${DRAFT_HEAD_KV}ff${DRAFT_FF}"
draft_params+=" ctx=$CTX lr=$LR steps=$STEPS max_s=$MAX_SECONDS train_seed=$TRAIN_SEED"
draft_params+=" train_threads=$TRAIN_THREADS"
trained_params="v=$tool_version trained=${TRAINED_EMBD}x${TRAINED_LAYER}h${TRAINED_HEAD}"
trained_params+="kv${TRAINED_HEAD_KV}ff${TRAINED_FF} ctx=$CTX lr=$TRAINED_LR steps=$TRAINED_STEPS"
trained_params+=" max_s=$TRAINED_MAX_SECONDS seed=$TRAINED_SEED threads=$TRAINED_THREADS"
params="$draft_params $trained_params target=${TARGET_EMBD}x${TARGET_LAYER}ff${TARGET_FF}"
params+=" noise=$NOISE_CLOSE,$NOISE_MID grow_seed=$GROW_SEED random_seed=$RANDOM_SEED"
hashes() { (cd "$root" && sha256sum "$@" | awk '{print $1}' | tr '\n' ' '); }
draft_sources=$(hashes tools/gguf_writer.hpp tools/model_eval.hpp tools/tandem-train-gguf.cpp \
  data/kjv/train.txt data/kjv/heldout.txt "$spm")
sources="$draft_sources $(hashes tools/gguf_grow.hpp tools/tandem-grow-gguf.cpp \
  tools/tandem-make-gguf.cpp tools/gguf_cli.hpp tools/tandem-eval-gguf.cpp)"
draft_key=$(printf '%s\n%s\n' "$draft_params" "$draft_sources" | sha256sum | cut -c1-16)
trained_key=$(printf '%s\n%s\n' "$trained_params" "$draft_sources" | sha256sum | cut -c1-16)
key=$(printf '%s\n%s\n' "$params" "$sources" | sha256sum | cut -c1-16)
draft_dir=$cache/draft-$draft_key
trained_dir=$cache/trained-$trained_key
dir=$cache/$key
mkdir -p "$cache"

# The draft is cached on its own (training is the slow part): pairs that differ only in
# the target's shape or noise share it.
if [[ ! -f $draft_dir/complete ]]; then
  tmp=$(mktemp -d "$cache/.tmp-draft-$draft_key-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  printf '%s\n' "$draft_params" >"$tmp/params.txt"
  echo "make-model-pair: training the draft ($draft_params)" >&2
  "$train" --spm "$spm" --train "$root/data/kjv/train.txt" --heldout "$root/data/kjv/heldout.txt" \
    --out "$tmp/draft.gguf" --n-embd "$DRAFT_EMBD" --n-layer "$DRAFT_LAYER" --n-head "$DRAFT_HEAD" \
    --n-head-kv "$DRAFT_HEAD_KV" --n-ff "$DRAFT_FF" --ctx "$CTX" --lr "$LR" --max-steps "$STEPS" \
    --max-seconds "$MAX_SECONDS" --seed "$TRAIN_SEED" --threads "$TRAIN_THREADS" |
    sed "s|$tmp|$draft_dir|g" >"$tmp/train.jsonl"
  touch "$tmp/complete"
  rm -rf "$draft_dir"
  mv "$tmp" "$draft_dir"
  trap - EXIT
fi

# The trained target: the draft's recipe (corpus, context, steps) at a larger size, with
# half its learning rate (at 1e-3, 128-wide models ended worse than the 64-wide draft:
# held-out perplexity 271 at 128x4, 206 at 128x2); cached on its own as the draft is.
if [[ ! -f $trained_dir/complete ]]; then
  tmp=$(mktemp -d "$cache/.tmp-trained-$trained_key-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  printf '%s\n' "$trained_params" >"$tmp/params.txt"
  echo "make-model-pair: training the target ($trained_params)" >&2
  "$train" --spm "$spm" --train "$root/data/kjv/train.txt" --heldout "$root/data/kjv/heldout.txt" \
    --out "$tmp/target-trained.gguf" --n-embd "$TRAINED_EMBD" --n-layer "$TRAINED_LAYER" \
    --n-head "$TRAINED_HEAD" --n-head-kv "$TRAINED_HEAD_KV" --n-ff "$TRAINED_FF" --ctx "$CTX" \
    --lr "$TRAINED_LR" --max-steps "$TRAINED_STEPS" --max-seconds "$TRAINED_MAX_SECONDS" \
    --seed "$TRAINED_SEED" --threads "$TRAINED_THREADS" |
    sed "s|$tmp|$trained_dir|g" >"$tmp/train.jsonl"
  touch "$tmp/complete"
  rm -rf "$trained_dir"
  mv "$tmp" "$trained_dir"
  trap - EXIT
fi

if [[ ! -f $dir/complete ]]; then
  tmp=$(mktemp -d "$cache/.tmp-$key-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  cp "$spm" "$tmp/vocab.model"
  cp "$draft_dir/draft.gguf" "$tmp/draft.gguf"
  cp "$trained_dir/target-trained.gguf" "$tmp/target-trained.gguf"
  cat "$draft_dir/train.jsonl" "$trained_dir/train.jsonl" >"$tmp/metrics.jsonl"
  printf '%s\n' "$params" >"$tmp/params.txt"
  echo "make-model-pair: growing the targets ($params)" >&2
  for which in close mid; do
    noise=$NOISE_CLOSE
    [[ $which == mid ]] && noise=$NOISE_MID
    "$grow" --in "$tmp/draft.gguf" --out "$tmp/target-$which.gguf" --n-embd "$TARGET_EMBD" \
      --n-layer "$TARGET_LAYER" --n-ff "$TARGET_FF" --noise "$noise" --seed "$GROW_SEED" \
      --name "tandem-kjv-target-$which" >>"$tmp/metrics.jsonl"
  done
  head_dim=$((DRAFT_EMBD / DRAFT_HEAD))
  n_head=$((TARGET_EMBD / head_dim))
  "$make" --out "$tmp/target-random.gguf" --spm "$spm" --n-embd "$TARGET_EMBD" \
    --n-layer "$TARGET_LAYER" --n-head "$n_head" --n-head-kv $((n_head * DRAFT_HEAD_KV / DRAFT_HEAD)) \
    --n-ff "$TARGET_FF" --seed "$RANDOM_SEED" --name tandem-random-target >&2
  "$evalt" --model "$tmp/draft.gguf" --heldout "$root/data/kjv/heldout.txt" --threads "$THREADS" \
    >>"$tmp/metrics.jsonl"
  for which in close mid random trained; do
    "$evalt" --model "$tmp/target-$which.gguf" --draft "$tmp/draft.gguf" \
      --heldout "$root/data/kjv/heldout.txt" --threads "$THREADS" >>"$tmp/metrics.jsonl"
  done
  sed -i "s|$tmp|$dir|g" "$tmp/metrics.jsonl"
  touch "$tmp/complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  trap - EXIT
fi

cat "$dir/metrics.jsonl" >&2
echo "MODEL_DIR=$dir"
echo "DRAFT=$dir/draft.gguf"
echo "TARGET_CLOSE=$dir/target-close.gguf"
echo "TARGET_MID=$dir/target-mid.gguf"
echo "TARGET_RANDOM=$dir/target-random.gguf"
echo "TARGET_TRAINED=$dir/target-trained.gguf"
echo "VOCAB=$dir/vocab.model"
