#!/usr/bin/env bash
# Builds scb, scb_tests and scb_gpu_bench from a GPU bundle's own files alone: the source tree in
# BUNDLE/src and the header-only dependencies and googletest source in BUNDLE/deps. One script for
# both uses, so the path that may have to rescue a GPU session is the path that made the carried
# binaries: gpu_bundle.sh runs it here, and gpu_session.sh runs it on the GPU machine when the
# carried binaries do not start there (other glibc, say). Nothing from the system is used but the
# compilers, CMake, ninja, OpenMP and the CUDA toolkit (cuBLAS included).
# Links libstdc++, libgcc, libgomp (where its static archive exists) and the CUDA runtime
# statically; cuBLAS stays a shared library (cuBLAS + cuBLASLt are ~600 MB), found through the
# RUNPATH ($ORIGIN/../lib, /usr/local/cuda/lib64) or LD_LIBRARY_PATH.
# Usage: build.sh BUNDLE BUILD_DIR     (env: SCB_CUDA_ARCHS, default 90; JOBS, default nproc)
# Leaves the three binaries in BUILD_DIR/bin.
set -euo pipefail
BUNDLE=$(cd "${1:?usage: build.sh BUNDLE BUILD_DIR}" && pwd)
mkdir -p "${2:?usage: build.sh BUNDLE BUILD_DIR}"
BUILD=$(cd "$2" && pwd)
ARCHS=${SCB_CUDA_ARCHS:-90}
JOBS=${JOBS:-$(nproc)}
launcher=()
if command -v ccache > /dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc > /dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi

# googletest from the carried source, installed under the build folder.
cmake -S "$BUNDLE/deps/googletest" -B "$BUILD/gtest" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_GMOCK=OFF -DINSTALL_GTEST=ON -DCMAKE_INSTALL_PREFIX="$BUILD/gtest-install" "${launcher[@]:0:1}" > /dev/null
cmake --build "$BUILD/gtest" --parallel "$JOBS" > /dev/null
cmake --install "$BUILD/gtest" > /dev/null
GTEST_DIR=$(dirname "$(find "$BUILD/gtest-install" -name GTestConfig.cmake | head -1)")

# libgomp statically where gcc ships its archive (else the system's libgomp.so.1 is used).
omp=()
gomp_a=$(${CXX:-c++} -print-file-name=libgomp.a)
if [ -f "$gomp_a" ]; then omp=(-DOpenMP_gomp_LIBRARY="$gomp_a"); fi

cmake -S "$BUNDLE/src" -B "$BUILD/scb" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSCB_CUDA=ON -DSCB_CUDA_ARCHS="$ARCHS" -DSCB_CUDA_STATIC_RUNTIME=ON \
  -Dfmt_DIR="$BUNDLE/deps/cmake/fmt" -Dnlohmann_json_DIR="$BUNDLE/deps/cmake/nlohmann_json" \
  -DCLI11_DIR="$BUNDLE/deps/cmake/CLI11" -DGTest_DIR="$GTEST_DIR" \
  -DCMAKE_EXE_LINKER_FLAGS="-static-libstdc++ -static-libgcc" \
  -DCMAKE_BUILD_RPATH='$ORIGIN/../lib;/usr/local/cuda/lib64' "${omp[@]}" "${launcher[@]}"
cmake --build "$BUILD/scb" --parallel "$JOBS" --target scb scb_tests scb_gpu_bench
mkdir -p "$BUILD/bin"
cp "$BUILD/scb/scb" "$BUILD/scb/tests/scb_tests" "$BUILD/scb/bench/scb_gpu_bench" "$BUILD/bin/"
echo "build.sh: binaries in $BUILD/bin"
