#pragma once
// The CUDA backend's host side, declared once for the two files that define it: attach (and the
// memory check) in cuda_attach.cu, the step loop, evaluation and downloads in cuda_backend.cu.
// Why it is shaped this way:
//  - All per-step decisions (is the run active, its stage, the end-of-step verdict of
//    step_rules.hpp) are taken on the device from the device's own counters, so a step needs no
//    upload and no sync. The host advances its counters optimistically (count_step, as if no run
//    diverged) and learns of divergence one step late from an async copy of the run states
//    (pinned double buffer), then takes the diverged runs' counters from the device.
//    evaluate() and download() synchronise fully.
//  - Memory is planned from cudaMemGetInfo before anything is allocated, from the same buffer
//    list attach allocates (cuda_plan.hpp, device_buffers.cuh).
//  - Softmax attention trains the logits held in A and keeps the attention in a device cache
//    (attn), refreshed after the update pass (softmax.cu); the other kernels read the cache
//    wherever linear attention reads A.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <vector>

#include "cuda_common.cuh"
#include "device_buffers.cuh"
#include "scb/cuda/cuda_backend.hpp"

namespace scb::cuda {

inline void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("CUDA backend: ") + what + ": cuBLAS status " + std::to_string(int(s)));
}

// Run states copied back after a step.
struct StateCopy {
  PinnedArray<uint8_t> status;
  PinnedArray<int64_t> step, samples, diverged_step;
  cudaEvent_t done = nullptr;
  bool pending = false;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const Options& options) : options_(options) {}
  ~CudaBackend() override;
  std::string name() const override { return "cuda"; }
  void attach(RunPack& pack) override;  // cuda_attach.cu
  void step() override;
  std::vector<Metrics> evaluate(const std::vector<uint32_t>& runs) override;
  void download() override;
  // The forward stage of the next step of every run, downloaded for run 0 (tests).
  ForwardDebug debug_forward();

 private:
  // cuda_attach.cu
  void create_stream_and_events();
  void check_memory(const RunPack& pack) const;
  void upload_problems(const RunPack& pack, HostStaging& staging);
  void initial_statistics(HostStaging& staging);
  // cuda_backend.cu
  void enqueue_forward();
  void enqueue_step();
  // One product of the GEMM path (cublasDgemmStridedBatched's arguments, strides in doubles),
  // issued as calls of exactly gemm_call_runs runs each.
  void gemm_calls(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const double* A, long long sA,
                  const double* B, long long sB, double* C, long long sC, const char* what);
  void enqueue_state_copy(StateCopy& s);
  void reconcile(const StateCopy& s);
  void sync_states();
  void push_host_status();

  static constexpr uint8_t kDivergedByte = kDiverged;

  Options options_;
  RunPack* pack_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  PackShape shape_{};
  DevPack dev_{};
  PackBuffers bufs_;
  std::vector<std::unique_ptr<ProblemBuffers>> problem_bufs_;
  StateCopy copies_[2];
  int cur_ = 0;
  std::vector<uint8_t> shadow_status_;
};

}  // namespace scb::cuda
