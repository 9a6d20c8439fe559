#pragma once
// RunPack: runs of one shape (N, T, algorithm, attention) trained together. Hyperparameters
// and state are structure-of-arrays, one entry per run, so a lambda x batch-size grid is one
// pack and one backend step advances every run in it. The CPU and CUDA backends consume the
// same pack; the host arrays V and A are the authoritative copy between `download` calls.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "scb/core/config.hpp"
#include "scb/core/problem.hpp"

namespace scb {

enum class RunStatus : uint8_t { running = 0, done = 1, diverged = 2 };

struct RunPack {
  uint32_t N = 0, T = 0;
  Algorithm algorithm = Algorithm::proximal;
  Attention attention = Attention::linear;
  std::vector<std::shared_ptr<const Problem>> problems;  // distinct problems of the pack

  // Per run (index r in [0, size())).
  std::vector<uint32_t> problem_index;
  std::vector<uint64_t> seed;
  std::vector<uint32_t> batch_size;
  std::vector<float> lr_V, lr_A, lambda, noise, divergence_limit;
  std::vector<int64_t> steps, stage1_steps, eval_every;
  std::vector<uint8_t> project, precondition, renormalize;

  // State.
  std::vector<int64_t> step;          // steps completed
  std::vector<int64_t> samples;       // samples consumed (population: steps * B)
  std::vector<RunStatus> status;
  std::vector<int64_t> diverged_step; // -1 unless diverged
  std::vector<float> V;               // run r: V[r*N*N + i*N + j]
  std::vector<float> A;               // run r: A[r*N*T + k*T + t]  (column a^(k) contiguous);
                                      // softmax attention: the logits w, a^(k) = softmax(w^(k))

  size_t size() const { return seed.size(); }
  const Problem& problem(size_t r) const { return *problems[problem_index[r]]; }
  float* V_of(size_t r) { return V.data() + r * size_t(N) * N; }
  float* A_of(size_t r) { return A.data() + r * size_t(N) * T; }
  const float* V_of(size_t r) const { return V.data() + r * size_t(N) * N; }
  const float* A_of(size_t r) const { return A.data() + r * size_t(N) * T; }
  bool active(size_t r) const { return status[r] == RunStatus::running && step[r] < steps[r]; }

  // Appends a run (its shape must match the pack's; the first run sets it) with its
  // initial parameters from model.init (stationary, uniform, or files).
  void add_run(const Config& cfg, std::shared_ptr<const Problem> problem);
};

// The attention matrix of run r by columns (A itself, or softmax of the logits).
std::vector<float> attention_matrix(const RunPack& pack, size_t r);

// Whether two configs can share a pack.
bool same_pack_shape(const Config& a, const Config& b);

// Initial V and A of docs/model.md section 2 for a config (files are loaded and their shapes validated).
void initial_parameters(const Config& cfg, const Problem& pb, float* V, float* A);

// Bytes one run needs on a backend, for the memory planner and the fit check (cpu_backend: the
// CPU backend's, which also keeps a population run's noise, keeps_noise).
struct RunFootprint {
  uint64_t parameters = 0;  // V and A
  uint64_t scratch = 0;     // per-step working memory (tokens, per-sample vectors)
  uint64_t problem = 0;     // tables (shared between runs of the same problem)
  uint64_t total() const { return parameters + scratch + problem; }
};
RunFootprint run_footprint(const Config& cfg, bool cpu_backend = true);

// A population step with noise and projection needs its A-noise twice: the column sums before
// the update, then every entry in the update. The CPU backend keeps it from the first use to the
// second (one write and one read, kept_noise_bytes: N x T doubles in whole tiles of 64) where
// that is at most max_bytes, instead of drawing it again (at N = 100, T = 100,000 the second
// draw was a third of the step). The same numbers either way (tests/test_population.cpp).
constexpr uint64_t kKeptNoiseMaxBytes = uint64_t(1) << 30;
inline uint64_t kept_noise_bytes(uint32_t N, uint32_t T) { return 8 * uint64_t(N) * 64 * ((uint64_t(T) + 63) / 64); }
// Whether a run's step projects its A-noise (population, noise, projection, linear attention):
// the column sums it needs; keeps_noise: and the CPU backend keeps that noise.
bool projects_noise(Algorithm algorithm, Attention attention, double noise, bool project);
bool keeps_noise(Algorithm algorithm, Attention attention, double noise, bool project, uint32_t N, uint32_t T,
                 uint64_t max_bytes = kKeptNoiseMaxBytes);
bool keeps_noise(const Config& cfg);

}  // namespace scb
