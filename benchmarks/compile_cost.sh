#!/usr/bin/env bash
# Compile cost of tandem's headers: what one `#include` costs a translation unit.
#
# For each umbrella (every include/tandem/*.hpp, tandem.hpp first) and each public header
# below include/tandem (found by globbing, detail/ folders excepted, so new headers are
# measured without editing this script), compiles a file that includes that header alone
# and defines an empty main, RUNS times (default 3), and prints one JSON line per header:
#   {"bench":"compile_cost","header":...,"seconds":median wall,"cpu_seconds":median
#    user+sys,"peak_mb":median max RSS,"runs":3,"command":...,"compiler":...}
# Then, for scale, the same for the third-party floors (<xsimd/xsimd.hpp>, <Eigen/Core>,
# <Eigen/Eigenvalues>), with "scale":true.
#
# Judge goals on cpu_seconds, the compiler's CPU time (user+sys), not on seconds (wall
# time): on a machine shared with other builds the wall clock moves with contention, while
# the CPU time moves far less (it still grows somewhat on a loaded machine: compare with
# the scale lines measured in the same run). Both are reported. Peak memory is the
# compiler's maximum resident set size (/usr/bin/time -f %M; apt package `time`).
#
# Backend headers are measured only when their dependency is found (llama.h through
# TANDEM_LLAMA_PREFIX or the usual cache prefix, sentencepiece in
# the system include path).
#
# Each line also records "load1", the one-minute load average when the header was measured.
# A last line, {"bench":"compile_cost","summary":true,...}, counts the headers measured and
# lists in "over_goals" each one over a goal below (with the goal it misses); the script
# exits 0 either way (it is a benchmark, not a test).
#
# Usage: benchmarks/compile_cost.sh [--quick] [header-regex]     (run from anywhere)
#   --quick: one run per header (RUNS=1) and, without a regex, only the umbrellas
#            (include/tandem/*.hpp) and the scale lines: for iterating on a change.
# Environment: CXX (default g++), CXXFLAGS (default -std=c++20 -O2), RUNS (default 3),
#              TANDEM_LLAMA_PREFIX (llama.cpp install prefix).
# Goals (issue 20, -O2, cpu_seconds): tandem.hpp <= 1.5 s; core.hpp, speculative.hpp
# <= 0.6 s; every public header <= 1.5 s; peak memory <= 250 MB.
set -u
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
quick=0
if [[ ${1:-} == --quick ]]; then
  quick=1
  shift
fi
filter="${1:-.}"
if ((quick)) && [[ -z ${1:-} ]]; then
  filter='^tandem/[a-z_]+\.hpp$|^xsimd/|^Eigen/'
fi
cxx="${CXX:-g++}"
read -r -a flags <<<"${CXXFLAGS:--std=c++20 -O2}"
runs="${RUNS:-3}"
((quick)) && runs=1
timebin=/usr/bin/time
if [[ ! -x $timebin ]]; then
  echo "compile_cost.sh: /usr/bin/time is missing (apt-get install time)" >&2
  exit 1
fi

eigen_dir=""
for d in /usr/include/eigen3 /usr/local/include/eigen3; do
  [[ -f $d/Eigen/Core ]] && eigen_dir="$d" && break
done
includes=(-I"$root/include")
[[ -n $eigen_dir ]] && includes+=(-I"$eigen_dir")

llama_prefix="${TANDEM_LLAMA_PREFIX:-$HOME/.cache/tandem/llama-cpp-nlc3.22.1-v2/prefix}"
have_header() { # <header> [extra include flags...]
  local h="$1"
  shift
  printf '#include <%s>\n' "$h" | "$cxx" -std=c++20 -fsyntax-only -x c++ "$@" - >/dev/null 2>&1
}

compiler="$("$cxx" --version | head -n 1)"
case "$compiler" in
  *"g++"* | *GCC*) compiler="g++ $("$cxx" -dumpfullversion)" ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

measure() { # [--scale] <header relative to include/> [extra flags...]
  local scale=""
  if [[ $1 == --scale ]]; then
    scale=',"scale":true'
    shift
  fi
  local header="$1"
  shift
  local extra=("$@")
  local src="$work/tu.cpp"
  printf '#include <%s>\nint main() { return 0; }\n' "$header" >"$src"
  local cmd=("$cxx" "${flags[@]}" "${includes[@]}" "${extra[@]}" -c "$src" -o "$work/tu.o")
  : >"$work/wall" && : >"$work/cpu" && : >"$work/rss"
  local i
  for ((i = 0; i < runs; ++i)); do
    if ! "$timebin" -f '%e %U %S %M' -o "$work/time" "${cmd[@]}" 2>"$work/err"; then
      echo "compile_cost.sh: $header does not compile:" >&2
      cat "$work/err" >&2
      return 0
    fi
    read -r wall user sys rss <"$work/time"
    echo "$wall" >>"$work/wall"
    awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f\n", u + s }' >>"$work/cpu"
    echo "$rss" >>"$work/rss"
  done
  local shown="$cxx ${flags[*]} -Iinclude"
  [[ -n $eigen_dir ]] && shown+=" -I$eigen_dir"
  ((${#extra[@]})) && shown+=" ${extra[*]}"
  shown+=" -c tu.cpp  # tu.cpp: #include <$header> + int main() { return 0; }"
  local cpu peak load
  cpu="$(median <"$work/cpu")"
  peak="$(($(median <"$work/rss") / 1024))"
  load="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo null)"
  printf '{"bench":"compile_cost","header":"%s","seconds":%s,"cpu_seconds":%s,"peak_mb":%d,"runs":%d,"load1":%s%s,"command":"%s","compiler":"%s"}\n' \
    "$header" "$(median <"$work/wall")" "$cpu" "$peak" "$runs" "$load" "$scale" \
    "${shown//\"/\\\"}" "$compiler"
  [[ -n $scale ]] && return 0
  measured=$((measured + 1))
  local limit=1.5
  case "$header" in
    tandem/core.hpp | tandem/speculative.hpp) limit=0.6 ;;
  esac
  if awk -v c="$cpu" -v l="$limit" 'BEGIN { exit !(c > l) }'; then
    over+=("\"$header: ${cpu} s > ${limit} s\"")
  fi
  ((peak > 250)) && over+=("\"$header: ${peak} MB > 250 MB\"")
  return 0
}
measured=0
over=()

headers=()
[[ -f $root/include/tandem/tandem.hpp ]] && headers+=("tandem/tandem.hpp")
while IFS= read -r h; do
  [[ $h == tandem/tandem.hpp ]] || headers+=("$h")
done < <(cd "$root/include" && find tandem -maxdepth 1 -name '*.hpp' | sort)
while IFS= read -r h; do
  case " ${headers[*]} " in *" $h "*) continue ;; esac
  headers+=("$h")
done < <(cd "$root/include" && find tandem -mindepth 2 -name '*.hpp' -not -path '*/detail/*' | sort)

for h in "${headers[@]}"; do
  [[ $h =~ $filter ]] || continue
  extra=()
  case "$h" in
    tandem/backends/llama_*.hpp)
      extra=(-I"$llama_prefix/include")
      have_header llama.h "${extra[@]}" || continue ;;
    tandem/backends/sentencepiece.hpp)
      have_header sentencepiece_processor.h || continue ;;
    tandem/backends/http.hpp)
      ;;  # its own HTTP client and JSON: nothing to find (HTTPS adds OpenSSL, not measured)
    tandem/testing/catch2.hpp)
      { have_header catch2/catch_test_macros.hpp || have_header catch2/catch.hpp; } || continue ;;
  esac
  measure "$h" "${extra[@]}"
done

# For scale: the third-party headers tandem builds on, alone.
for h in xsimd/xsimd.hpp Eigen/Core Eigen/Eigenvalues; do
  [[ $h =~ $filter ]] || continue
  have_header "$h" "${includes[@]}" || continue
  measure --scale "$h"
done

# Summary: the headers over a goal (cpu_seconds and peak_mb, as above).
joined="$(IFS=,; echo "${over[*]:-}")"
printf '{"bench":"compile_cost","summary":true,"headers":%d,"runs":%d,"over_goals":[%s],"goals":"tandem.hpp <= 1.5 s; core.hpp, speculative.hpp <= 0.6 s; every header <= 1.5 s; peak <= 250 MB (cpu_seconds, peak_mb)"}\n' \
  "$measured" "$runs" "$joined"
