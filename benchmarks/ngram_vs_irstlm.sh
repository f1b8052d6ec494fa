#!/usr/bin/env bash
# tandem's n-gram model against IRSTLM on the KJV split (data/kjv/train.txt, heldout.txt).
#
# Protocol: one verse a line, every 10th line held out; a sentencepiece BPE model with 4000
# pieces and byte fallback trained on train.txt encodes both files. Both toolkits see the
# same token sequences with <s> ... </s> around every line: IRSTLM gets the pieces as
# words with the markers written out (its add-start-end convention: <s> only opens a
# history, </s> is predicted); tandem gets the ids with BOS = <s> (1), EOS = </s> (2)
# wrapped by its builder. Perplexity is over every held-out token after <s>, </s> included
# (104,901 tokens). Tokens unseen in training: tandem spreads the lowest order's discounted
# mass uniformly over the 4000-id vocabulary (BOS excluded); IRSTLM is run with
# -dub=4000 so that its out-of-vocabulary penalty spreads over the same vocabulary size.
# IRSTLM: tlm -lm=ikn (interpolated Kneser-Ney, three discounts per order) -ps=no (keep
# singletons). Its wall time, CPU time and peak RSS come from /usr/bin/time -v and cover
# reading, estimating and testing, which is what bench_ngram's total_s, cpu_s and
# max_rss_mb cover too.
#
# Usage: benchmarks/ngram_vs_irstlm.sh BENCH_NGRAM_BINARY [WORK_DIR]
# Environment: IRSTLM_ORDERS (default "3 5 6"), TANDEM_ORDERS (default "3 5 6"),
#              REPEATS (builds per order for the median build time, default 3).
# Prints bench_ngram's JSON lines on stdout (with IRSTLM's figures and the ratios where
# IRSTLM ran the same order), a summary on stderr. Needs spm_train, spm_encode, IRSTLM's
# tlm and GNU time; run it on an idle machine (timings on shared cores mean little).
set -euo pipefail

bench=${1:?usage: ngram_vs_irstlm.sh BENCH_NGRAM_BINARY [WORK_DIR]}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data="$root/data/kjv"
work=${2:-$(mktemp -d)}
mkdir -p "$work"
irstlm_orders=${IRSTLM_ORDERS:-"3 5 6"}
tandem_orders=${TANDEM_ORDERS:-"3 5 6"}
repeats=${REPEATS:-3}

tlm=$(command -v tlm || echo /usr/lib/irstlm/bin/tlm)
for tool in spm_train spm_encode "$tlm" /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "ngram_vs_irstlm: $tool not found" >&2; exit 1; }
done

if [[ ! -f "$work/kjv4000.model" ]]; then
  spm_train --input="$data/train.txt" --model_prefix="$work/kjv4000" --vocab_size=4000 \
    --model_type=bpe --byte_fallback=true >"$work/spm_train.log" 2>&1
fi
for part in train heldout; do
  spm_encode --model="$work/kjv4000.model" --output_format=id <"$data/$part.txt" >"$work/$part.ids"
  spm_encode --model="$work/kjv4000.model" --output_format=piece <"$data/$part.txt" |
    sed -e 's/^/<s> /' -e 's/$/ <\/s>/' >"$work/$part.se"
done

# seconds from GNU time's "h:mm:ss" or "m:ss.ss"
to_seconds() { awk -F: '{ s = 0; for (i = 1; i <= NF; ++i) s = s * 60 + $i; print s }' <<<"$1"; }

declare -A irst_ppl irst_wall irst_cpu irst_rss
for n in $irstlm_orders; do
  log="$work/tlm_$n.log"
  /usr/bin/time -v "$tlm" -tr="$work/train.se" -te="$work/heldout.se" -n="$n" -lm=ikn -ps=no \
    -dub=4000 >"$log" 2>&1
  irst_ppl[$n]=$(grep -o 'PP=[0-9.e+-]*' "$log" | tail -1 | cut -d= -f2)
  irst_wall[$n]=$(to_seconds "$(grep 'Elapsed (wall clock)' "$log" | awk '{print $NF}')")
  user=$(grep 'User time (seconds)' "$log" | awk '{print $NF}')
  sys=$(grep 'System time (seconds)' "$log" | awk '{print $NF}')
  irst_cpu[$n]=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
  irst_rss[$n]=$(grep 'Maximum resident set size' "$log" | awk '{print $NF}')
  echo "IRSTLM order $n: perplexity ${irst_ppl[$n]}, ${irst_wall[$n]} s wall," \
    "${irst_cpu[$n]} s CPU, max RSS ${irst_rss[$n]} kB" >&2
done

for n in $tandem_orders; do
  extra=()
  if [[ -n "${irst_ppl[$n]:-}" ]]; then
    extra=(--irstlm-ppl "${irst_ppl[$n]}" --irstlm-seconds "${irst_wall[$n]}"
      --irstlm-cpu-seconds "${irst_cpu[$n]}" --irstlm-rss-kb "${irst_rss[$n]}")
  fi
  "$bench" --train "$work/train.ids" --heldout "$work/heldout.ids" --vocab 4000 --bos 1 --eos 2 \
    --order "$n" --repeats "$repeats" "${extra[@]}"
done
