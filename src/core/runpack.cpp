#include "scb/core/runpack.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "scb/core/npy.hpp"

namespace scb {

bool same_pack_shape(const Config& a, const Config& b) {
  return a.problem.N == b.problem.N && a.problem.T == b.problem.T &&
         a.train.algorithm == b.train.algorithm && a.model.attention == b.model.attention;
}

void initial_parameters(const Config& cfg, const Problem& pb, float* V, float* A) {
  const uint32_t N = pb.N, T = pb.T;
  for (size_t e = 0; e < size_t(N) * T; ++e) A[e] = 1.0f / static_cast<float>(T);
  for (uint32_t i = 0; i < N; ++i)
    for (uint32_t j = 0; j < N; ++j)
      V[size_t(i) * N + j] = cfg.model.init == Init::uniform ? 1.0f / static_cast<float>(N)
                                                              : static_cast<float>(pb.mu[i]);
  if (cfg.model.init != Init::files) return;
  // Values are stored as float: one beyond float range would be inf from the first step.
  auto load = [](const std::string& path, uint64_t rows, uint64_t cols, const char* key) {
    std::vector<double> m = read_npy_matrix(path, rows, cols, fmt::format("model.init.{}", key));
    for (size_t e = 0; e < m.size(); ++e)
      if (!std::isfinite(m[e]) || std::fabs(m[e]) > double(std::numeric_limits<float>::max()))
        throw ConfigError(fmt::format("model.init.{}: {} holds {} at [{}][{}], beyond the range of float32", key, path, m[e],
                                      e / cols, e % cols));
    return m;
  };
  if (!cfg.model.init_V.empty()) {
    const std::vector<double> v = load(cfg.model.init_V, N, N, "V");
    for (size_t e = 0; e < v.size(); ++e) V[e] = static_cast<float>(v[e]);
  }
  if (!cfg.model.init_A.empty()) {
    const std::vector<double> a = load(cfg.model.init_A, T, N, "A");  // T x N, C order
    for (uint32_t t = 0; t < T; ++t)
      for (uint32_t k = 0; k < N; ++k) A[size_t(k) * T + t] = static_cast<float>(a[size_t(t) * N + k]);
  }
}

void RunPack::add_run(const Config& cfg, std::shared_ptr<const Problem> pb) {
  if (size() == 0) {
    N = cfg.problem.N;
    T = cfg.problem.T;
    algorithm = cfg.train.algorithm;
    attention = cfg.model.attention;
  } else if (cfg.problem.N != N || cfg.problem.T != T || cfg.train.algorithm != algorithm ||
             cfg.model.attention != attention) {
    throw std::logic_error("RunPack::add_run: the run's shape differs from the pack's");
  }
  uint32_t index = 0;
  while (index < problems.size() && problems[index] != pb) ++index;
  if (index == problems.size()) problems.push_back(std::move(pb));
  problem_index.push_back(index);
  const TrainConfig& t = cfg.train;
  seed.push_back(t.seed);
  batch_size.push_back(t.batch_size);
  lr_V.push_back(static_cast<float>(t.lr_V));
  lr_A.push_back(static_cast<float>(t.lr_A));
  lambda.push_back(static_cast<float>(t.lambda));
  noise.push_back(static_cast<float>(t.noise));
  divergence_limit.push_back(static_cast<float>(std::min(t.divergence_limit, 3.0e38)));
  steps.push_back(t.steps);
  stage1_steps.push_back(t.algorithm == Algorithm::sgd ? t.steps : t.stage1_steps);
  eval_every.push_back(cfg.eval.every);
  project.push_back(t.project);
  precondition.push_back(t.precondition);
  renormalize.push_back(t.renormalize);
  step.push_back(0);
  samples.push_back(0);
  status.push_back(RunStatus::running);
  diverged_step.push_back(-1);
  const size_t r = size() - 1;
  V.resize(V.size() + size_t(N) * N);
  A.resize(A.size() + size_t(N) * T);
  initial_parameters(cfg, *problems[index], V_of(r), A_of(r));
  if (attention == Attention::softmax) {
    // Softmax attention trains logits w with softmax(w) = the initial attention.
    float* w = A_of(r);
    for (size_t e = 0; e < size_t(N) * T; ++e) w[e] = std::log(std::max(w[e], 1e-30f));
  }
}

std::vector<float> attention_matrix(const RunPack& pack, size_t r) {
  const float* A = pack.A_of(r);
  std::vector<float> a(A, A + size_t(pack.N) * pack.T);
  if (pack.attention == Attention::softmax)
    for (uint32_t k = 0; k < pack.N; ++k) softmax_column(A + size_t(k) * pack.T, pack.T, a.data() + size_t(k) * pack.T);
  return a;
}

bool projects_noise(Algorithm algorithm, Attention attention, double noise, bool project) {
  return algorithm == Algorithm::population && noise > 0 && project && attention == Attention::linear;
}

bool keeps_noise(Algorithm algorithm, Attention attention, double noise, bool project, uint32_t N, uint32_t T,
                 uint64_t max_bytes) {
  return projects_noise(algorithm, attention, noise, project) && kept_noise_bytes(N, T) <= max_bytes;
}

bool keeps_noise(const Config& cfg) {
  // The float the pack holds: a noise that rounds to 0 there draws nothing.
  return keeps_noise(cfg.train.algorithm, cfg.model.attention, static_cast<float>(cfg.train.noise), cfg.train.project,
                     cfg.problem.N, cfg.problem.T);
}

RunFootprint run_footprint(const Config& cfg, bool cpu_backend) {
  const uint64_t N = cfg.problem.N, T = cfg.problem.T, B = cfg.train.batch_size;
  RunFootprint f;
  f.parameters = 4 * (N * N + N * T) * (cfg.model.attention == Attention::softmax ? 2 : 1);
  if (cfg.train.algorithm == Algorithm::population) {
    f.scratch = 8 * N * N + 16 * N + 8 * N * ((T + 63) / 64) +
                (cpu_backend && keeps_noise(cfg) ? kept_noise_bytes(uint32_t(N), uint32_t(T)) : 0);
  } else {
    // tokens (uint16), h, r, g (double), counts (uint32), per-sample scalars, partial sums
    f.scratch = 2 * B * T + B * N * (3 * 8 + 4) + 16 * B + 8 * N * N + 8 * N * ((T + 63) / 64);
  }
  f.problem = 16 * N * N + 24 * uint64_t(cfg.problem.Q) * N + 16 * N;
  return f;
}

}  // namespace scb
