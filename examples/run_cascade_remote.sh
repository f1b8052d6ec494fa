#!/bin/sh
# Runs cascade_remote against a llama-server it starts on a free 127.0.0.1 port with a
# tiny random-weight model, then stops the server (also on failure or interruption).
# usage: run_cascade_remote.sh LLAMA_SERVER TANDEM_MAKE_GGUF CASCADE_REMOTE WORKDIR
set -eu
server=$1 make_gguf=$2 cascade=$3 dir=$4
mkdir -p "$dir"
"$make_gguf" --out "$dir/tiny.gguf" --seed 3 --n-ctx-train 1024 >/dev/null
pid=""
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; }
trap cleanup EXIT INT TERM
for port in 18741 18743 18747 18749 18753; do
  "$server" -m "$dir/tiny.gguf" --host 127.0.0.1 --port "$port" -c 1024 -np 1 -t 2 \
    >"$dir/server.log" 2>&1 &
  pid=$!
  i=0
  while [ $i -lt 300 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then pid=""; break; fi
    if "$cascade" --url "http://127.0.0.1:$port/v1" --prompt probe --threshold 1e9 \
         --max-tokens 1 >/dev/null 2>&1; then
      # The remote answers: run the cascade (the third default prompt is off-domain and
      # escalates), with prices per token.
      "$cascade" --url "http://127.0.0.1:$port/v1" --price-in 0.000001 --price-out 0.000002
      exit $?
    fi
    i=$((i + 1))
    sleep 0.1
  done
  cleanup
  pid=""
done
echo "llama-server did not start; see $dir/server.log" >&2
exit 1
