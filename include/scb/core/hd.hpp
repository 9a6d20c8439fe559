#pragma once
// SCB_HD marks the per-element math that the CPU backend and the CUDA kernels share:
// one definition, compiled for both, so the GPU is checked against exactly the code
// the CPU runs.
#if defined(__CUDACC__)
#define SCB_HD __host__ __device__ __forceinline__
#else
#define SCB_HD inline
#endif
