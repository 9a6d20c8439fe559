// The CUDA backend's step loop, evaluation and downloads (the class: cuda_backend.cuh; attach:
// cuda_attach.cu). A step is a fixed sequence of kernels on one stream; the host keeps its view
// of the runs' counters with the same count_step the device uses and reconciles divergence one
// step late. The GEMM path issues every product in calls of a fixed number of runs, so a run's
// products do not depend on the pack it trains in.
#include <stdexcept>

#include "cuda_backend.cuh"

namespace scb {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

void cuda_memory_info(uint64_t& free_bytes, uint64_t& total_bytes) {
  free_bytes = total_bytes = 0;
  if (cuda_device_count() == 0) return;
  size_t f = 0, t = 0;
  if (cudaMemGetInfo(&f, &t) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  free_bytes = f;
  total_bytes = t;
}

namespace cuda {

CudaBackend::~CudaBackend() {
  if (stream_) cudaStreamSynchronize(stream_);
  for (StateCopy& s : copies_)
    if (s.done) cudaEventDestroy(s.done);
  if (cublas_) cublasDestroy(cublas_);
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaBackend::step() {
  RunPack& p = *pack_;
  if (p.size() == 0) return;
  push_host_status();
  enqueue_step();
  for (size_t r = 0; r < p.size(); ++r)
    if (p.active(r)) {  // optimistic: as if no run diverged (reconcile corrects those that did)
      const RunCounters c = count_step(RunCounters{p.step[r], p.samples[r], p.diverged_step[r], false},
                                       p.batch_size[r], false);
      p.step[r] = c.step;
      p.samples[r] = c.samples;
    }
  // Copy the run states of this step; reconcile the previous step's copy (one step late).
  StateCopy& cur = copies_[cur_];
  enqueue_state_copy(cur);
  StateCopy& prev = copies_[cur_ ^ 1];
  if (prev.pending) {
    check_cuda(cudaEventSynchronize(prev.done), "step");
    reconcile(prev);
    prev.pending = false;
  }
  cur_ ^= 1;
}

std::vector<Metrics> CudaBackend::evaluate(const std::vector<uint32_t>& runs) {
  sync_states();
  const RunPack& p = *pack_;
  const uint32_t N = p.N, L = static_cast<uint32_t>(runs.size());
  std::vector<Metrics> out(L);
  if (L == 0) return out;
  check_cuda(cudaMemcpyAsync(bufs_.run_list.get(), runs.data(), L * sizeof(uint32_t), cudaMemcpyHostToDevice, stream_),
             "upload of the evaluated runs");
  launch_column_stats(dev_, bufs_.run_list.get(), L, bufs_.stats.get(), false, stream_);
  launch_gather_v(dev_, bufs_.run_list.get(), L, bufs_.v_out.get(), stream_);
  std::vector<ColumnStats> stats(size_t(L) * N);
  std::vector<float> V(size_t(L) * N * N);
  check_cuda(cudaMemcpyAsync(stats.data(), bufs_.stats.get(), stats.size() * sizeof(ColumnStats),
                             cudaMemcpyDeviceToHost, stream_),
             "download of the column statistics");
  check_cuda(cudaMemcpyAsync(V.data(), bufs_.v_out.get(), V.size() * sizeof(float), cudaMemcpyDeviceToHost, stream_),
             "download of V");
  check_cuda(cudaStreamSynchronize(stream_), "evaluate");
  // The O(N^2) host half of the metrics, a run per thread (as the CPU backend's evaluate).
#pragma omp parallel for schedule(dynamic)
  for (uint32_t i = 0; i < L; ++i) {
    const uint32_t r = runs[i];
    out[i] = metrics_from_stats(p.problem(r), V.data() + size_t(i) * N * N, stats.data() + size_t(i) * N);
    out[i].step = p.step[r];
    out[i].samples = p.samples[r];
  }
  return out;
}

void CudaBackend::download() {
  sync_states();
  RunPack& p = *pack_;
  launch_materialize(dev_, stream_);
  check_cuda(cudaMemcpyAsync(p.V.data(), dev_.V, p.V.size() * sizeof(float), cudaMemcpyDeviceToHost, stream_),
             "download of V");
  check_cuda(cudaMemcpyAsync(p.A.data(), dev_.A, p.A.size() * sizeof(float), cudaMemcpyDeviceToHost, stream_),
             "download of A");
  check_cuda(cudaStreamSynchronize(stream_), "download");
}

ForwardDebug CudaBackend::debug_forward() {
  if (dev_.population) throw std::logic_error("debug_forward: sampled packs only");
  const uint32_t N = dev_.N, T = dev_.T, B = pack_->batch_size[0];
  enqueue_forward();
  ForwardDebug out;
  out.tokens.resize(size_t(B) * T);
  out.k.resize(B);
  out.x_o.resize(B);
  out.h.resize(size_t(B) * N);
  out.g.resize(size_t(B) * N);
  out.counts.resize(size_t(B) * N);
  out.m.resize(B);
  auto get = [&](auto& v, const auto* src) {
    check_cuda(cudaMemcpyAsync(v.data(), src, v.size() * sizeof(v[0]), cudaMemcpyDeviceToHost, stream_), "download");
  };
  get(out.tokens, dev_.tokens);
  get(out.k, dev_.kq);
  get(out.x_o, dev_.xo);
  get(out.h, dev_.h);
  get(out.g, dev_.g);
  get(out.counts, dev_.counts);
  get(out.m, dev_.m);
  check_cuda(cudaStreamSynchronize(stream_), "debug_forward");
  return out;
}

void CudaBackend::gemm_calls(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const double* A,
                             long long sA, const double* B, long long sB, double* C, long long sC, const char* what) {
  const double one = 1.0, zero = 0.0;
  const uint32_t call = gemm_call_runs(dev_.N, shape_.gemm_batch);
  const int lda = ta == CUBLAS_OP_N ? m : k, ldb = tb == CUBLAS_OP_N ? k : n;
  for (uint64_t r0 = 0; r0 < shape_.gemm_runs; r0 += call)
    check_cublas(cublasDgemmStridedBatched(cublas_, ta, tb, m, n, k, &one, A + r0 * sA, lda, sA, B + r0 * sB, ldb, sB,
                                           &zero, C + r0 * sC, m, sC, static_cast<int>(call)),
                 what);
}

void CudaBackend::enqueue_forward() {
  const DevPack& d = dev_;
  launch_forward(d, shape_.samples, stream_);
  launch_sample_finish(d, shape_.samples, stream_);
  if (!shape_.gemm) return;
  const int N = static_cast<int>(d.N), B = static_cast<int>(shape_.gemm_batch);
  const long long sNN = static_cast<long long>(N) * N, sBN = static_cast<long long>(B) * N;
  launch_v_to_double(d, stream_);
  // VH (col-major N x B per run) = op(Vd) h with op = transpose of the column-major view of the
  // row-major V, i.e. V itself.
  gemm_calls(CUBLAS_OP_T, CUBLAS_OP_N, N, B, N, d.Vd, sNN, d.h, sBN, d.rr, sBN, "GEMM V h");
  launch_gemm_residual(d, shape_.samples, stream_);
  // g = V^T r: the column-major view of row-major V is V^T.
  gemm_calls(CUBLAS_OP_N, CUBLAS_OP_N, N, B, N, d.Vd, sNN, d.rr, sBN, d.g, sBN, "GEMM V^T r");
  launch_gemm_mean(d, shape_.samples, stream_);
}

void CudaBackend::enqueue_step() {
  const DevPack& d = dev_;
  if (d.population) {
    launch_population_noise(d, stream_);  // the noise's column sums, for the projection mean
    launch_population_terms(d, stream_);
    launch_population_v(d, stream_);
  } else {
    enqueue_forward();
    launch_run_reduce(d, stream_);
    if (shape_.gemm) {
      const int N = static_cast<int>(d.N), B = static_cast<int>(shape_.gemm_batch);
      const long long sNN = static_cast<long long>(N) * N, sBN = static_cast<long long>(B) * N;
      // dV^T (column-major) = H R^T: dV[i][j] = sum_b r_b[i] h_b[j], row-major in the buffer.
      gemm_calls(CUBLAS_OP_N, CUBLAS_OP_T, N, N, B, d.h, sBN, d.rr, sBN, d.dV, sNN, "GEMM R^T H");
      launch_v_update_from_dv(d, stream_);
    } else {
      launch_dv_update(d, stream_);
    }
  }
  launch_a_update(d, stream_);
  launch_softmax_refresh(d, false, stream_);  // before finish: it still sees a diverged step
  launch_finish(d, stream_);
}

void CudaBackend::enqueue_state_copy(StateCopy& s) {
  const size_t R = pack_->size();
  auto copy = [&](auto* dst, const auto* src) {
    check_cuda(cudaMemcpyAsync(dst, src, R * sizeof(*src), cudaMemcpyDeviceToHost, stream_), "state copy");
  };
  copy(s.status.get(), dev_.status);
  copy(s.step.get(), dev_.step);
  copy(s.samples.get(), dev_.samples);
  copy(s.diverged_step.get(), dev_.diverged_step);
  check_cuda(cudaEventRecord(s.done, stream_), "event");
  s.pending = true;
}

// Runs the device diverged: their counters are the device's (count_step there).
void CudaBackend::reconcile(const StateCopy& s) {
  RunPack& p = *pack_;
  for (size_t r = 0; r < p.size(); ++r) {
    if (s.status.get()[r] != kDiverged) continue;
    shadow_status_[r] = kDiverged;
    if (p.status[r] == RunStatus::diverged) continue;
    p.step[r] = s.step.get()[r];
    p.samples[r] = s.samples.get()[r];
    p.status[r] = RunStatus::diverged;
    p.diverged_step[r] = s.diverged_step.get()[r];
  }
}

void CudaBackend::sync_states() {
  check_cuda(cudaStreamSynchronize(stream_), "sync");
  check_cuda(cudaGetLastError(), "sync");
  StateCopy& s = copies_[cur_];
  enqueue_state_copy(s);
  check_cuda(cudaEventSynchronize(s.done), "sync");
  reconcile(s);
  for (StateCopy& c : copies_) c.pending = false;
}

// The trainer marks runs diverged on non-finite metrics: stop them on the device too.
void CudaBackend::push_host_status() {
  RunPack& p = *pack_;
  for (size_t r = 0; r < p.size(); ++r)
    if (p.status[r] == RunStatus::diverged && shadow_status_[r] != kDiverged) {
      check_cuda(cudaMemcpyAsync(dev_.status + r, &kDivergedByte, 1, cudaMemcpyHostToDevice, stream_), "status");
      shadow_status_[r] = kDiverged;
    }
}

std::unique_ptr<Backend> make_backend(const Options& options) { return std::make_unique<CudaBackend>(options); }

ForwardDebug debug_forward(RunPack& pack, const Options& options) {
  CudaBackend backend(options);
  backend.attach(pack);
  return backend.debug_forward();
}

}  // namespace cuda

std::unique_ptr<Backend> make_cuda_backend() { return cuda::make_backend(cuda::Options{}); }

}  // namespace scb
