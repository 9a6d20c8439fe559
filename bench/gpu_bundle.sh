#!/usr/bin/env bash
# Makes the one folder a GPU session needs (bench/gpu_session.sh runs from it alone), here, before
# any GPU time is spent: a lent GPU machine has 15 minutes in all, no network and none of our
# Debian -dev packages, so nothing may be missing or built there unless the carried binaries fail.
#   bin/      scb, scb_tests, scb_gpu_bench for sm_90; libstdc++, libgcc, libgomp and the CUDA
#             runtime linked statically; cuBLAS (~600 MB with cuBLASLt, over the 64 MiB a device
#             call carries) is the GPU machine's own, found by gpu_session.sh at run time
#   src/      the source tree (tracked and untracked-not-ignored files of this checkout)
#   deps/     header-only nlohmann json, CLI11, fmt (header-only mode), CMake configs for them
#             (bench/bundle/cmake) and the googletest source: enough for build.sh to rebuild there
#   build.sh, gpu_session.sh, MANIFEST.txt (what was built from what, sizes, linked libraries)
# Usage: bench/gpu_bundle.sh [OUT_DIR]   (default: gpu_bundle/ in the repo root, git-ignored)
# env: SCB_BUNDLE_BUILD (build folder, default build-bundle/), JOBS (default 2: a shared machine).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUNDLE=${1:-$REPO/gpu_bundle}
BUILD=${SCB_BUNDLE_BUILD:-$REPO/build-bundle}
export JOBS=${JOBS:-2} SCB_CUDA_ARCHS=${SCB_CUDA_ARCHS:-90}
export CCACHE_DIR=${CCACHE_DIR:-/work/.ccache}
LIMIT_BYTES=$((64 * 1024 * 1024))

mkdir -p "$BUNDLE"
BUNDLE=$(cd "$BUNDLE" && pwd)
rm -rf "$BUNDLE/src" "$BUNDLE/deps" "$BUNDLE/bin"
mkdir -p "$BUNDLE/src" "$BUNDLE/deps/include" "$BUNDLE/deps/cmake" "$BUNDLE/bin"

# The source tree as it is in this checkout (uncommitted edits included; MANIFEST says so).
(cd "$REPO" && git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
  [ -f "$f" ] && printf '%s\0' "$f"
done | xargs -0 cp --parents -t "$BUNDLE/src")

# Header-only dependencies with their CMake configs, and the googletest source.
for d in nlohmann CLI fmt; do cp -r "/usr/include/$d" "$BUNDLE/deps/include/"; done
cp -r "$REPO/bench/bundle/cmake/." "$BUNDLE/deps/cmake/"
json_version=$(awk '/#define NLOHMANN_JSON_VERSION_(MAJOR|MINOR|PATCH) / {v = v (v ? "." : "") $3} END {print v}' \
  "$BUNDLE/deps/include/nlohmann/detail/abi_macros.hpp")
sed -i "s/@NLOHMANN_VERSION@/$json_version/" "$BUNDLE/deps/cmake/nlohmann_json/nlohmann_jsonConfigVersion.cmake"
cp -r /usr/src/googletest "$BUNDLE/deps/googletest"
cp "$REPO/bench/bundle/build.sh" "$REPO/bench/gpu_session.sh" "$BUNDLE/"

# Build with the bundle's own files (the same script is the fallback on the GPU machine).
mkdir -p "$BUILD"
nice -n 10 "$BUNDLE/build.sh" "$BUNDLE" "$BUILD" > "$BUILD/bundle_build.log" 2>&1 || {
  grep -E "error|FAILED" -A3 "$BUILD/bundle_build.log" | head -40
  echo "gpu_bundle.sh: build failed, log: $BUILD/bundle_build.log"
  exit 1
}
cp "$BUILD/bin/"* "$BUNDLE/bin/"
strip --strip-debug "$BUNDLE/bin/"*

# The binaries start here (cuBLAS from this machine's toolkit; no GPU needed for these).
"$BUNDLE/bin/scb" --help > /dev/null
"$BUNDLE/bin/scb_tests" --gtest_list_tests > /dev/null
"$BUNDLE/bin/scb_gpu_bench" --help > /dev/null

source_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/scb/CMakeCache.txt")
{
  echo "scb GPU bundle, made $(date -u +%FT%TZ) on $(hostname)"
  echo "git: $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown) (src/ is the checkout as it was)"
  echo "cuda_archs: $SCB_CUDA_ARCHS"
  echo "nvcc: $(/usr/local/cuda/bin/nvcc --version | tail -1)"
  echo "glibc_built_against: $(ldd --version | head -1)"
  echo "source_dir: $source_dir"
  echo "cublas: not carried; gpu_session.sh finds libcublas.so.13 on the GPU machine"
  echo "--- sizes (bytes)"
  (cd "$BUNDLE" && du -sb bin/* src deps)
  echo "--- ldd bin/scb (here)"
  ldd "$BUNDLE/bin/scb"
} > "$BUNDLE/MANIFEST.txt"

size=$(du -sb "$BUNDLE" | cut -f1)
echo "gpu_bundle.sh: $BUNDLE is $((size / 1024 / 1024)) MiB ($size bytes; a device call carries 64 MiB with the working tree)"
[ "$size" -lt "$LIMIT_BYTES" ] || { echo "gpu_bundle.sh: over 64 MiB"; exit 1; }
