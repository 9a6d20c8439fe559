// attach of the CUDA backend: plans the pack's device memory, allocates every buffer of the
// plan's lists, uploads the problems and the pack, and computes what the first step reads (the
// softmax attention of the initial logits, the population statistics of the initial A). Every
// memset, upload and launch is enqueued on the backend's stream, synchronised once at the end.
#include <cstdio>
#include <stdexcept>

#include "cuda_backend.cuh"

namespace scb::cuda {

void CudaBackend::create_stream_and_events() {
  if (!stream_) check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  for (StateCopy& s : copies_)
    if (!s.done) check_cuda(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming), "cudaEventCreate");
}

void CudaBackend::check_memory(const RunPack& pack) const {
  uint64_t need = pack_device_bytes(shape_);
  for (const auto& pb : pack.problems) need += problem_device_bytes(pack.N, pb->q_pos.size());
  uint64_t free_bytes = 0, total = 0;
  cuda_memory_info(free_bytes, total);
  if (need + kDeviceHeadroom / 2 > free_bytes) {
    char msg[320];
    std::snprintf(msg, sizeof msg,
                  "CUDA backend: the pack of %zu runs (N = %u, T = %u) needs %.2f GiB of device memory but only "
                  "%.2f GiB is free; use smaller packs (scb::cuda::runs_that_fit) or --device cpu",
                  pack.size(), pack.N, pack.T, need / 1073741824.0, free_bytes / 1073741824.0);
    throw std::runtime_error(msg);
  }
}

void CudaBackend::upload_problems(const RunPack& pack, HostStaging& staging) {
  problem_bufs_.clear();
  std::vector<DevProblem> views;
  for (const auto& pb : pack.problems) {
    problem_bufs_.push_back(std::make_unique<ProblemBuffers>());
    views.push_back(problem_bufs_.back()->upload(*pb, staging, stream_));
  }
  bufs_.problems.upload(staging.keep(std::move(views)), stream_);
}

// Population packs: the column statistics of the initial A (later steps reduce them on the way).
void CudaBackend::initial_statistics(HostStaging& staging) {
  if (!dev_.population) return;
  std::vector<uint32_t> all(dev_.R);
  for (uint32_t r = 0; r < dev_.R; ++r) all[r] = r;
  bufs_.run_list.upload(staging.keep(std::move(all)), stream_);
  launch_column_stats(dev_, bufs_.run_list.get(), dev_.R, nullptr, true, stream_);
}

void CudaBackend::attach(RunPack& pack) {
  pack_ = &pack;
  if (cuda_device_count() == 0) throw std::runtime_error("CUDA backend: no CUDA device is visible");
  create_stream_and_events();
  const uint32_t R = static_cast<uint32_t>(pack.size());
  shape_ = pack_shape(pack, use_gemm(options_.gemm, pack.algorithm, pack.N, pack.batch_size));
  if (shape_.samples * shape_.chunks > 0x7FFFFFFFull) throw std::runtime_error("CUDA backend: too many samples in one pack");
  check_memory(pack);

  HostStaging staging;  // host sources of the uploads, alive until the synchronisation below
  problem_bufs_.clear();
  bufs_.allocate(shape_, stream_);
  dev_ = DevPack{};
  dev_.N = pack.N;
  dev_.T = pack.T;
  dev_.R = R;
  dev_.population = !shape_.sampled;
  dev_.sgd = pack.algorithm == Algorithm::sgd;
  dev_.gemm = shape_.gemm;
  dev_.softmax = shape_.softmax;
  dev_.fp = forward_plan(pack.N, pack.T);
  dev_.tp = a_tile_plan(pack.N, pack.T);
  bufs_.bind(dev_);
  upload_problems(pack, staging);
  bufs_.upload(pack, staging, stream_);
  shadow_status_ = status_bytes(pack);

  if (shape_.sampled) setup_forward_attributes(dev_.fp);
  if (shape_.gemm) {
    if (!cublas_) check_cublas(cublasCreate(&cublas_), "cublasCreate");
    check_cublas(cublasSetStream(cublas_, stream_), "cublasSetStream");
  }
  for (StateCopy& s : copies_) {
    s.status.allocate(R);
    s.step.allocate(R);
    s.samples.allocate(R);
    s.diverged_step.allocate(R);
    s.pending = false;
  }
  cur_ = 0;
  launch_softmax_refresh(dev_, true, stream_);  // softmax: the attention of the initial logits
  initial_statistics(staging);
  check_cuda(cudaStreamSynchronize(stream_), "attach");
}

}  // namespace scb::cuda
