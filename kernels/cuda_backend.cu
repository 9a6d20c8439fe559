// Host orchestration of the CUDA backend: uploads a RunPack, enqueues one step of every run as a
// fixed sequence of kernels on one stream, and keeps the host's view of the runs (step, samples,
// status) current. Why it is shaped this way:
//  - All per-step decisions (is the run active, thresholding, renormalising) are taken on the
//    device from the device's own step counters, so a step needs no upload and no sync. The host
//    advances its counters optimistically and learns of divergence one step late from an async
//    copy of the run states (pinned double buffer), then corrects the diverged runs' counters.
//    evaluate() and download() synchronise fully.
//  - Memory is planned from cudaMemGetInfo before anything is allocated (run_device_bytes).
//  - Softmax attention trains the logits held in A and keeps the attention in a device cache
//    (attn), refreshed after the update pass (softmax.cu); the other kernels read the cache
//    wherever linear attention reads A.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda_common.cuh"
#include "scb/cuda/cuda_backend.hpp"

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

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("CUDA backend: ") + what + ": " + cudaGetErrorString(e));
}
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("CUDA backend: ") + what + ": cuBLAS status " + std::to_string(int(s)));
}

// A typed device allocation.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { release(); }
  void allocate(size_t n) {
    release();
    n_ = n;
    if (n) {
      check(cudaMalloc(&p_, n * sizeof(T)), "cudaMalloc");
      check(cudaMemset(p_, 0, n * sizeof(T)), "cudaMemset");
    }
  }
  void upload(const T* src, size_t n) {
    allocate(n);
    if (n) check(cudaMemcpy(p_, src, n * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  void upload(const std::vector<T>& v) { upload(v.data(), v.size()); }
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  void release() {
    if (p_) cudaFree(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  size_t n_ = 0;
};

template <typename T>
class PinnedArray {
 public:
  PinnedArray() = default;
  PinnedArray(const PinnedArray&) = delete;
  PinnedArray& operator=(const PinnedArray&) = delete;
  ~PinnedArray() {
    if (p_) cudaFreeHost(p_);
  }
  void allocate(size_t n) {
    if (p_) cudaFreeHost(p_);
    p_ = nullptr;
    if (n) check(cudaMallocHost(&p_, n * sizeof(T)), "cudaMallocHost");
  }
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
};

struct ProblemBuffers {
  DeviceArray<uint32_t> mu_thr, mu_alias, P_thr, P_alias, q_ptr, q_pos, q_thr, q_alias;
  DeviceArray<double> mu, P, q_w, sq;
};

// Run states copied back after a step (status, step, diverged_step).
struct StateCopy {
  PinnedArray<uint8_t> status;
  PinnedArray<int64_t> step, diverged_step;
  cudaEvent_t done = nullptr;
  bool pending = false;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const Options& options) : options_(options) {}
  ~CudaBackend() override {
    if (stream_) cudaStreamSynchronize(stream_);
    for (StateCopy& s : copies_)
      if (s.done) cudaEventDestroy(s.done);
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  std::string name() const override { return "cuda"; }

  void attach(RunPack& pack) override {
    pack_ = &pack;
    if (cuda_device_count() == 0) throw std::runtime_error("CUDA backend: no CUDA device is visible");
    if (!stream_) check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    for (StateCopy& s : copies_)
      if (!s.done) check(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming), "cudaEventCreate");
    const uint32_t N = pack.N, T = pack.T, R = static_cast<uint32_t>(pack.size());
    const bool pop = pack.algorithm == Algorithm::population;
    const bool softmax = pack.attention == Attention::softmax;
    gemm_ = use_gemm(options_.gemm, pack.algorithm, N, pack.batch_size);
    check_memory(pack);

    DevPack& d = dev_;
    d = DevPack{};
    d.N = N;
    d.T = T;
    d.R = R;
    d.population = pop;
    d.sgd = pack.algorithm == Algorithm::sgd;
    d.gemm = gemm_;
    d.softmax = softmax;
    d.fp = forward_plan(N, T);
    d.tp = a_tile_plan(N, T);

    // Problems.
    problem_bufs_.clear();
    std::vector<DevProblem> views;
    for (const auto& pb : pack.problems) {
      auto buf = std::make_unique<ProblemBuffers>();
      buf->mu_thr.upload(pb->mu_table.threshold);
      buf->mu_alias.upload(pb->mu_table.alias);
      buf->P_thr.upload(pb->P_threshold);
      buf->P_alias.upload(pb->P_alias);
      buf->q_ptr.upload(pb->q_ptr);
      buf->q_pos.upload(pb->q_pos);
      buf->q_thr.upload(pb->q_threshold);
      buf->q_alias.upload(pb->q_alias);
      buf->mu.upload(pb->mu);
      buf->P.upload(pb->P);
      buf->q_w.upload(pb->q_w);
      std::vector<double> sq(N, 0.0);
      for (uint32_t k = 0; k < N; ++k)
        for (uint32_t s = pb->q_ptr[k]; s < pb->q_ptr[k + 1]; ++s) sq[k] += pb->q_w[s];
      buf->sq.upload(sq);
      DevProblem v;
      v.view.N = N;
      v.view.T = T;
      v.view.mu_threshold = buf->mu_thr.get();
      v.view.mu_alias = buf->mu_alias.get();
      v.view.P_threshold = buf->P_thr.get();
      v.view.P_alias = buf->P_alias.get();
      v.view.q_ptr = buf->q_ptr.get();
      v.view.q_pos = buf->q_pos.get();
      v.view.q_threshold = buf->q_thr.get();
      v.view.q_alias = buf->q_alias.get();
      v.mu = buf->mu.get();
      v.P = buf->P.get();
      v.q_w = buf->q_w.get();
      v.sq = buf->sq.get();
      views.push_back(v);
      problem_bufs_.push_back(std::move(buf));
    }
    problems_.upload(views);
    d.problems = problems_.get();
    problem_index_.upload(pack.problem_index);
    d.problem_index = problem_index_.get();

    // Hyperparameters.
    seed_.upload(pack.seed);
    batch_.upload(pack.batch_size);
    lr_V_.upload(pack.lr_V);
    lr_A_.upload(pack.lr_A);
    lambda_.upload(pack.lambda);
    noise_.upload(pack.noise);
    limit_.upload(pack.divergence_limit);
    steps_.upload(pack.steps);
    stage1_.upload(pack.stage1_steps);
    project_.upload(pack.project);
    renormalize_.upload(pack.renormalize);
    d.seed = seed_.get();
    d.batch = batch_.get();
    d.lr_V = lr_V_.get();
    d.lr_A = lr_A_.get();
    d.lambda = lambda_.get();
    d.noise = noise_.get();
    d.limit = limit_.get();
    d.steps = steps_.get();
    d.stage1 = stage1_.get();
    d.project = project_.get();
    d.renormalize = renormalize_.get();

    // State.
    step_.upload(pack.step);
    std::vector<uint8_t> status(R);
    for (uint32_t r = 0; r < R; ++r) status[r] = static_cast<uint8_t>(pack.status[r]);
    status_.upload(status);
    diverged_step_.upload(pack.diverged_step);
    vbad_.allocate(R);
    abad_.allocate(R);
    d.step = step_.get();
    d.status = status_.get();
    d.diverged_step = diverged_step_.get();
    d.vbad = vbad_.get();
    d.abad = abad_.get();
    shadow_status_ = status;

    // Parameters.
    V_.upload(pack.V);
    A_.upload(pack.A);
    scale_.upload(std::vector<float>(size_t(R) * N, 1.0f));
    std::vector<float> inv_mu(size_t(R) * N);
    for (uint32_t r = 0; r < R; ++r)
      for (uint32_t k = 0; k < N; ++k)
        inv_mu[size_t(r) * N + k] = pack.precondition[r] ? float(1.0 / pack.problem(r).mu[k]) : 1.0f;
    inv_mu_.upload(inv_mu);
    col_mean_.allocate(size_t(R) * N);
    pstats_.allocate(size_t(R) * N * 3);
    col_part_.allocate(size_t(R) * d.tp.tiles * N * 3);
    d.V = V_.get();
    d.A = A_.get();
    d.scale = scale_.get();
    d.inv_mu = inv_mu_.get();
    d.col_mean = col_mean_.get();
    d.pstats = pstats_.get();
    d.col_part = col_part_.get();
    if (softmax) {
      attn_.allocate(size_t(R) * N * T);
      adot_.allocate(size_t(R) * N);
      d.attn = attn_.get();
      d.adot = adot_.get();
    }

    // Samples.
    samples_ = 0;
    if (!pop) {
      const SampleMap map = sample_map(pack.batch_size);
      samples_ = map.total();
      if (samples_ * d.fp.chunks > 0x7FFFFFFFull) throw std::runtime_error("CUDA backend: too many samples in one pack");
      sample_offset_.upload(map.offset);
      sample_run_.upload(map.run);
      sample_index_.upload(map.index);
      tokens_.allocate(samples_ * T);
      part_h_.allocate(samples_ * d.fp.chunks * N);
      part_c_.allocate(samples_ * d.fp.chunks * N);
      h_.allocate(samples_ * N);
      rr_.allocate(samples_ * N);
      g_.allocate(samples_ * N);
      counts_.allocate(samples_ * N);
      kq_.allocate(samples_);
      xo_.allocate(samples_);
      m_.allocate(samples_);
      col_start_.allocate(size_t(R) * (N + 1));
      col_samples_.allocate(samples_);
      d.sample_offset = sample_offset_.get();
      d.sample_run = sample_run_.get();
      d.sample_index = sample_index_.get();
      d.tokens = tokens_.get();
      d.part_h = part_h_.get();
      d.part_c = part_c_.get();
      d.h = h_.get();
      d.rr = rr_.get();
      d.g = g_.get();
      d.counts = counts_.get();
      d.kq = kq_.get();
      d.xo = xo_.get();
      d.m = m_.get();
      d.col_start = col_start_.get();
      d.col_samples = col_samples_.get();
      if (softmax) {
        hg_.allocate(samples_);
        d.hg = hg_.get();
      }
      setup_forward_attributes(d.fp);
      if (gemm_) {
        Vd_.allocate(size_t(R) * N * N);
        dV_.allocate(size_t(R) * N * N);
        d.Vd = Vd_.get();
        d.dV = dV_.get();
        if (!cublas_) check(cublasCreate(&cublas_), "cublasCreate");
        check(cublasSetStream(cublas_, stream_), "cublasSetStream");
      }
    } else {
      pterm_.allocate(size_t(R) * N * 3);
      vmu_.allocate(size_t(R) * N);
      pscal_.allocate(size_t(R) * 4);
      d.pterm = pterm_.get();
      d.vmu = vmu_.get();
      d.pscal = pscal_.get();
      bool noisy = false;  // some run projects a noisy gradient: the noise pre-pass runs
      for (uint32_t r = 0; r < R; ++r) noisy |= !softmax && pack.noise[r] > 0 && pack.project[r];
      if (noisy) {
        noise_part_.allocate(size_t(R) * d.tp.tiles * N);
        d.noise_part = noise_part_.get();
      }
    }
    run_list_.allocate(R);
    stats_.allocate(size_t(R) * N);
    v_out_.allocate(size_t(R) * N * N);
    for (StateCopy& s : copies_) {
      s.status.allocate(R);
      s.step.allocate(R);
      s.diverged_step.allocate(R);
      s.pending = false;
    }
    launch_softmax_refresh(d, true, stream_);  // softmax: the attention of the initial logits
    if (pop) {  // the population statistics of the initial A
      std::vector<uint32_t> all(R);
      for (uint32_t r = 0; r < R; ++r) all[r] = r;
      check(cudaMemcpy(run_list_.get(), all.data(), R * sizeof(uint32_t), cudaMemcpyHostToDevice), "upload");
      launch_column_stats(d, run_list_.get(), R, nullptr, true, stream_);
    }
    check(cudaStreamSynchronize(stream_), "attach");
    check(cudaGetLastError(), "attach");
  }

  void step() override {
    RunPack& p = *pack_;
    if (p.size() == 0) return;
    push_host_status();
    enqueue_step();
    check(cudaGetLastError(), "step launch");
    for (size_t r = 0; r < p.size(); ++r)
      if (p.active(r)) {
        p.step[r] += 1;
        p.samples[r] += p.batch_size[r];
      }
    // Copy the run states of this step; reconcile the previous step's copy (one step late).
    StateCopy& cur = copies_[cur_];
    enqueue_state_copy(cur);
    StateCopy& prev = copies_[cur_ ^ 1];
    if (prev.pending) {
      check(cudaEventSynchronize(prev.done), "step");
      reconcile(prev);
      prev.pending = false;
    }
    cur_ ^= 1;
  }

  std::vector<Metrics> evaluate(const std::vector<uint32_t>& runs) override {
    sync_states();
    const RunPack& p = *pack_;
    const uint32_t N = p.N, L = static_cast<uint32_t>(runs.size());
    std::vector<Metrics> out(L);
    if (L == 0) return out;
    check(cudaMemcpyAsync(run_list_.get(), runs.data(), L * sizeof(uint32_t), cudaMemcpyHostToDevice, stream_), "upload");
    launch_column_stats(dev_, run_list_.get(), L, stats_.get(), false, stream_);
    launch_gather_v(dev_, run_list_.get(), L, v_out_.get(), stream_);
    std::vector<ColumnStats> stats(size_t(L) * N);
    std::vector<float> V(size_t(L) * N * N);
    check(cudaMemcpyAsync(stats.data(), stats_.get(), stats.size() * sizeof(ColumnStats), cudaMemcpyDeviceToHost, stream_),
          "download");
    check(cudaMemcpyAsync(V.data(), v_out_.get(), V.size() * sizeof(float), cudaMemcpyDeviceToHost, stream_), "download");
    check(cudaStreamSynchronize(stream_), "evaluate");
    for (uint32_t i = 0; i < L; ++i) {
      const uint32_t r = runs[i];
      out[i] = metrics_from_stats(p.problem(r), V.data() + size_t(i) * N * N, stats.data() + size_t(i) * N);
      out[i].step = p.step[r];
      out[i].samples = p.samples[r];
    }
    return out;
  }

  void download() override {
    sync_states();
    RunPack& p = *pack_;
    launch_materialize(dev_, stream_);
    check(cudaMemcpyAsync(p.V.data(), V_.get(), p.V.size() * sizeof(float), cudaMemcpyDeviceToHost, stream_), "download");
    check(cudaMemcpyAsync(p.A.data(), A_.get(), p.A.size() * sizeof(float), cudaMemcpyDeviceToHost, stream_), "download");
    check(cudaStreamSynchronize(stream_), "download");
  }

  // The forward stage of the next step of every run, downloaded for run 0 (tests).
  ForwardDebug debug_forward() {
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
      check(cudaMemcpyAsync(v.data(), src, v.size() * sizeof(v[0]), cudaMemcpyDeviceToHost, stream_), "download");
    };
    get(out.tokens, tokens_.get());
    get(out.k, kq_.get());
    get(out.x_o, xo_.get());
    get(out.h, h_.get());
    get(out.g, g_.get());
    get(out.counts, counts_.get());
    get(out.m, m_.get());
    check(cudaStreamSynchronize(stream_), "debug_forward");
    check(cudaGetLastError(), "debug_forward");
    return out;
  }

 private:
  void check_memory(const RunPack& pack) {
    uint64_t need = 0;
    for (size_t r = 0; r < pack.size(); ++r)
      need += run_device_bytes(pack.N, pack.T, pack.batch_size[r], pack.algorithm, gemm_,
                               pack.attention == Attention::softmax);
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

  void enqueue_forward() {
    const DevPack& d = dev_;
    launch_forward(d, samples_, stream_);
    launch_sample_finish(d, samples_, stream_);
    if (gemm_) {
      const int N = static_cast<int>(d.N), B = static_cast<int>(pack_->batch_size[0]), R = static_cast<int>(d.R);
      const long long sNN = static_cast<long long>(N) * N, sBN = static_cast<long long>(B) * N;
      const double one = 1.0, zero = 0.0;
      launch_v_to_double(d, stream_);
      // VH (col-major N x B per run) = op(Vd) h with op = transpose of the column-major view of
      // the row-major V, i.e. V itself.
      check(cublasDgemmStridedBatched(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, N, B, N, &one, d.Vd, N, sNN, d.h, N, sBN,
                                      &zero, d.rr, N, sBN, R),
            "GEMM V h");
      launch_gemm_residual(d, samples_, stream_);
      // g = V^T r: the column-major view of row-major V is V^T.
      check(cublasDgemmStridedBatched(cublas_, CUBLAS_OP_N, CUBLAS_OP_N, N, B, N, &one, d.Vd, N, sNN, d.rr, N, sBN,
                                      &zero, d.g, N, sBN, R),
            "GEMM V^T r");
      launch_gemm_mean(d, samples_, stream_);
    }
  }

  void enqueue_step() {
    const DevPack& d = dev_;
    if (d.population) {
      launch_population_noise(d, stream_);  // the noise's column sums, for the projection mean
      launch_population_terms(d, stream_);
      launch_population_v(d, stream_);
    } else {
      enqueue_forward();
      launch_run_reduce(d, stream_);
      if (gemm_) {
        const int N = static_cast<int>(d.N), B = static_cast<int>(pack_->batch_size[0]), R = static_cast<int>(d.R);
        const long long sNN = static_cast<long long>(N) * N, sBN = static_cast<long long>(B) * N;
        const double one = 1.0, zero = 0.0;
        // dV^T (column-major) = H R^T: dV[i][j] = sum_b r_b[i] h_b[j], row-major in the buffer.
        check(cublasDgemmStridedBatched(cublas_, CUBLAS_OP_N, CUBLAS_OP_T, N, N, B, &one, d.h, N, sBN, d.rr, N, sBN,
                                        &zero, d.dV, N, sNN, R),
              "GEMM R^T H");
        launch_v_update_from_dv(d, stream_);
      } else {
        launch_dv_update(d, stream_);
      }
    }
    launch_a_update(d, stream_);
    launch_softmax_refresh(d, false, stream_);  // before finish: it still sees a diverged step
    launch_finish(d, stream_);
  }

  void enqueue_state_copy(StateCopy& s) {
    const size_t R = pack_->size();
    check(cudaMemcpyAsync(s.status.get(), dev_.status, R, cudaMemcpyDeviceToHost, stream_), "state copy");
    check(cudaMemcpyAsync(s.step.get(), dev_.step, R * sizeof(int64_t), cudaMemcpyDeviceToHost, stream_), "state copy");
    check(cudaMemcpyAsync(s.diverged_step.get(), dev_.diverged_step, R * sizeof(int64_t), cudaMemcpyDeviceToHost, stream_),
          "state copy");
    check(cudaEventRecord(s.done, stream_), "event");
    s.pending = true;
  }

  // Runs the device diverged: fix the host's optimistic counters.
  void reconcile(const StateCopy& s) {
    RunPack& p = *pack_;
    for (size_t r = 0; r < p.size(); ++r) {
      if (s.status.get()[r] != kDiverged) continue;
      shadow_status_[r] = kDiverged;
      if (p.status[r] == RunStatus::diverged) continue;
      const int64_t dev_step = s.step.get()[r];
      p.samples[r] -= (p.step[r] - dev_step) * int64_t(p.batch_size[r]);
      p.step[r] = dev_step;
      p.status[r] = RunStatus::diverged;
      p.diverged_step[r] = s.diverged_step.get()[r];
    }
  }

  void sync_states() {
    check(cudaStreamSynchronize(stream_), "sync");
    check(cudaGetLastError(), "sync");
    StateCopy& s = copies_[cur_];
    enqueue_state_copy(s);
    check(cudaEventSynchronize(s.done), "sync");
    reconcile(s);
    for (StateCopy& c : copies_) c.pending = false;
  }

  // The trainer marks runs diverged on non-finite metrics: stop them on the device too.
  void push_host_status() {
    RunPack& p = *pack_;
    for (size_t r = 0; r < p.size(); ++r)
      if (p.status[r] == RunStatus::diverged && shadow_status_[r] != kDiverged) {
        check(cudaMemcpyAsync(dev_.status + r, &kDivergedByte, 1, cudaMemcpyHostToDevice, stream_), "status");
        shadow_status_[r] = kDiverged;
      }
  }

  static constexpr uint8_t kDivergedByte = kDiverged;

  Options options_;
  RunPack* pack_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  bool gemm_ = false;
  uint64_t samples_ = 0;
  DevPack dev_{};
  std::vector<std::unique_ptr<ProblemBuffers>> problem_bufs_;
  DeviceArray<DevProblem> problems_;
  DeviceArray<uint32_t> problem_index_;
  DeviceArray<uint64_t> seed_;
  DeviceArray<uint32_t> batch_;
  DeviceArray<float> lr_V_, lr_A_, lambda_, noise_, limit_;
  DeviceArray<int64_t> steps_, stage1_, step_, diverged_step_;
  DeviceArray<uint8_t> project_, renormalize_, status_;
  DeviceArray<uint32_t> vbad_, abad_;
  DeviceArray<float> V_, A_, scale_, inv_mu_, col_mean_;
  DeviceArray<double> pstats_, col_part_;
  DeviceArray<uint64_t> sample_offset_;
  DeviceArray<uint32_t> sample_run_, sample_index_;
  DeviceArray<uint16_t> tokens_;
  DeviceArray<double> part_h_, h_, rr_, g_, m_;
  DeviceArray<uint32_t> part_c_, counts_, kq_, xo_, col_start_, col_samples_;
  DeviceArray<double> Vd_, dV_, pterm_, vmu_, pscal_, noise_part_, adot_, hg_;
  DeviceArray<float> attn_;
  DeviceArray<uint32_t> run_list_;
  DeviceArray<ColumnStats> stats_;
  DeviceArray<float> v_out_;
  StateCopy copies_[2];
  int cur_ = 0;
  std::vector<uint8_t> shadow_status_;
};

}  // namespace

std::unique_ptr<Backend> make_backend(const Options& options) { return std::make_unique<CudaBackend>(options); }

ForwardDebug debug_forward(RunPack& pack, const Options& options) {
  CudaBackend backend(options);
  backend.attach(pack);
  return backend.debug_forward();
}

}  // namespace cuda

std::unique_ptr<Backend> make_cuda_backend() { return cuda::make_backend(cuda::Options{}); }

}  // namespace scb
