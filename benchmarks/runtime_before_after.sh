#!/usr/bin/env bash
# Runtime before and after a change: builds bench_logits and bench_speculative at a base
# revision and at HEAD (each exported with `git archive` into a temp dir, so neither the
# working tree nor the repository's worktree list is touched), with the same Release flags,
# runs them alternately (base, head, base, head, ...) and prints, per case, the median of
# head / base over the rounds:
#   bench_logits:      ns_per_call        (time: above 1 means HEAD is slower)
#   bench_speculative: speculative_s      (synthetic cases, CPU time: above 1 is slower),
#                      tandem_cpu_tps     (model pairs: inverted, base / head, so above 1
#                                          is slower there too)
# One JSON line per case, {"bench":"runtime_before_after","case":...,"metric":...,
# "base":median,"head":median,"head_over_base":median of per-round ratios}, then a summary
# line with the largest slowdown. Issue 20's check ("runtime must not drop") wants every
# ratio within noise of 1: run it on an idle machine (it is a timing benchmark).
#
# Usage: benchmarks/runtime_before_after.sh [options] [-- bench_speculative args...]
#   --base REV     base revision (default 7445faf, before issue 20's work)
#   --head REV     revision to compare (default HEAD)
#   --rounds N     alternating rounds (default 3)
#   --tiny         a smoke test of this script only, not a measurement: bench_logits
#                  --quick, bench_speculative --synthetic-only --reps 1 --tokens 16, 1 round
#   --keep DIR     build in DIR and keep it (default: a temp dir, removed at the end)
# bench_speculative's arguments default to `--synthetic-only --reps 3 --tokens 200`; to add
# the model pairs pass e.g. `-- --reps 3 --tokens 200 --models ~/.cache/tandem/models/<key>`.
# Environment: CXX, TANDEM_NATIVE (default ON, as the `bench` preset), CMAKE_PREFIX_PATH
# (default: the llama.cpp prefix under ~/.cache/tandem, when present), JOBS (default 2).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base_rev=7445faf
head_rev=HEAD
rounds=3
tiny=0
keep=""
spec_args=(--synthetic-only --reps 3 --tokens 200)
while (($#)); do
  case "$1" in
    --base) base_rev="$2" && shift 2 ;;
    --head) head_rev="$2" && shift 2 ;;
    --rounds) rounds="$2" && shift 2 ;;
    --tiny) tiny=1 && shift ;;
    --keep) keep="$2" && shift 2 ;;
    --) shift && spec_args=("$@") && break ;;
    *)
      echo "usage: runtime_before_after.sh [--base REV] [--head REV] [--rounds N] [--tiny]" \
        "[--keep DIR] [-- bench_speculative args...]" >&2
      exit 2 ;;
  esac
done
logits_args=()
if ((tiny)); then
  rounds=1
  logits_args=(--quick)
  spec_args=(--synthetic-only --reps 1 --tokens 16)
fi

prefix_default="$HOME/.cache/tandem/llama-cpp-nlc3.22.1-v2/prefix"
prefix="${CMAKE_PREFIX_PATH:-}"
[[ -z $prefix && -d $prefix_default ]] && prefix="$prefix_default"

if [[ -n $keep ]]; then
  work="$keep"
  mkdir -p "$work"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi

build() { # <name> <rev>
  local name="$1" rev="$2" src="$work/$1/src" bin="$work/$1/build"
  rm -rf "$src" && mkdir -p "$src"
  git -C "$root" archive "$rev" | tar -x -C "$src"
  local args=(-S "$src" -B "$bin" -G Ninja -DCMAKE_BUILD_TYPE=Release
              -DTANDEM_BUILD_BENCHMARKS=ON -DTANDEM_BUILD_TESTS=OFF -DTANDEM_BUILD_EXAMPLES=OFF
              -DTANDEM_BUILD_TOOLS=OFF -DTANDEM_BUILD_DOCS=OFF -DTANDEM_INSTALL=OFF
              "-DTANDEM_NATIVE=${TANDEM_NATIVE:-ON}")
  [[ -n $prefix ]] && args+=("-DCMAKE_PREFIX_PATH=$prefix")
  echo "runtime_before_after.sh: building $name ($rev = $(git -C "$root" rev-parse --short "$rev"))" >&2
  cmake "${args[@]}" >"$work/$name.configure.log" 2>&1 || {
    cat "$work/$name.configure.log" >&2
    exit 1
  }
  cmake --build "$bin" --target bench_logits bench_speculative -j "${JOBS:-2}" \
    >"$work/$name.build.log" 2>&1 || {
    tail -n 40 "$work/$name.build.log" >&2
    exit 1
  }
}
build base "$base_rev"
build head "$head_rev"

for ((r = 1; r <= rounds; ++r)); do
  for side in base head; do
    echo "runtime_before_after.sh: round $r/$rounds, $side" >&2
    "$work/$side/build/benchmarks/bench_logits" "${logits_args[@]}" \
      >"$work/$side.logits.$r.jsonl" 2>/dev/null
    "$work/$side/build/benchmarks/bench_speculative" "${spec_args[@]}" \
      >"$work/$side.speculative.$r.jsonl" 2>/dev/null
  done
done

python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys

work, rounds = sys.argv[1], int(sys.argv[2])
# metric name, and whether a larger value means slower
metrics = [("ns_per_call", True), ("speculative_s", True), ("tandem_cpu_tps", False)]


def rows(side, bench, r):
    out = {}
    with open(f"{work}/{side}.{bench}.{r}.jsonl") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            d = json.loads(line)
            # bench_logits before 2026-12 printed no "logits" field: its rows were all synthetic
            key = (d.get("bench"), d.get("case"), d.get("vocab"),
                   d.get("logits", "synthetic" if d.get("bench") == "logits" else None))
            for m, slower_if_larger in metrics:
                if isinstance(d.get(m), (int, float)) and d[m] > 0:
                    out[key] = (m, slower_if_larger, float(d[m]))
                    break
    return out


worst = None
for bench in ("logits", "speculative"):
    per_round = [(rows("base", bench, r), rows("head", bench, r)) for r in range(1, rounds + 1)]
    keys = [k for k in per_round[0][0] if all(k in b and k in h for b, h in per_round)]
    for key in keys:
        m, slower_if_larger = per_round[0][0][key][:2]
        b = [br[key][2] for br, _ in per_round]
        h = [hr[key][2] for _, hr in per_round]
        ratios = [(y / x if slower_if_larger else x / y) for x, y in zip(b, h)]
        ratio = statistics.median(ratios)
        name = key[1] + (f"/{key[2]}" if key[2] is not None else "") + (
            f"/{key[3]}" if key[3] is not None else "")
        print(json.dumps({"bench": "runtime_before_after", "of": key[0], "case": name,
                          "metric": m, "base": statistics.median(b),
                          "head": statistics.median(h), "head_over_base": round(ratio, 4),
                          "rounds": rounds}))
        if worst is None or ratio > worst[1]:
            worst = (name, ratio)
print(json.dumps({"bench": "runtime_before_after", "summary": True, "rounds": rounds,
                  "slowest_case": worst[0] if worst else None,
                  "largest_head_over_base": round(worst[1], 4) if worst else None,
                  "note": "head_over_base > 1: HEAD slower (time ratio; tps inverted)"}))
PY
