#!/usr/bin/env bash
# Builds llama.cpp from the git bundle inside the npm package node-llama-cpp and
# installs it under a cache folder outside the repository, keyed by version.
# Prints the install prefix on stdout (last line). Idempotent: a finished build is reused.
set -euo pipefail
NLC_VERSION="${TANDEM_NODE_LLAMA_CPP_VERSION:-3.22.1}"
CACHE_ROOT="${TANDEM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem}"
KEY="llama-cpp-nlc${NLC_VERSION}-v2"
PREFIX="$CACHE_ROOT/$KEY/prefix"
if [ -f "$CACHE_ROOT/$KEY/done" ]; then echo "$PREFIX"; exit 0; fi
WORK="$CACHE_ROOT/$KEY/work"
rm -rf "$WORK" "$PREFIX"; mkdir -p "$WORK"
cd "$WORK"
npm pack "node-llama-cpp@${NLC_VERSION}" >&2
tar xzf "node-llama-cpp-${NLC_VERSION}.tgz"
git clone -q package/llama/gitRelease.bundle llama.cpp >&2
rm -rf package "node-llama-cpp-${NLC_VERSION}.tgz"
JOBS="${TANDEM_JOBS:-$(nproc)}"
cmake -S llama.cpp -B build -G Ninja -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_SERVER=ON -DGGML_NATIVE=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" >&2
cmake --build build -j"$JOBS" >&2
cmake --install build >&2
# Examples/tools are not all installed by every version; copy the ones tandem uses.
mkdir -p "$PREFIX/bin"
for b in llama-server llama-speculative-simple llama-completion llama-bench; do
  [ -x "build/bin/$b" ] && cp -f "build/bin/$b" "$PREFIX/bin/"
done
git -C llama.cpp log -1 --format='%H %s' > "$PREFIX/VERSION" || true
rm -rf "$WORK/build"
touch "$CACHE_ROOT/$KEY/done"
echo "$PREFIX"
