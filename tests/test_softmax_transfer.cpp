// Softmax attention and transfer learning (issue 5): the logit step of the backend against
// finite differences of the exact loss, and the loading/validation of pretrained files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "scb/core/backend.hpp"
#include "scb/cpu/cpu_backend.hpp"
#include "scb/core/npy.hpp"
#include "scb/core/population.hpp"
#include "scb/core/runpack.hpp"
#include "scb/core/trainer.hpp"

#include <unistd.h>

namespace {

using nlohmann::json;

scb::Config make_config(json user) { return scb::resolve_config(user, std::filesystem::current_path()); }

// L(V, softmax(W)) in double from float logits.
double softmax_loss(const scb::Problem& pb, const std::vector<float>& V, const std::vector<double>& W) {
  std::vector<double> A(W.size());
  for (uint32_t k = 0; k < pb.N; ++k) {
    const double* w = W.data() + size_t(k) * pb.T;
    double m = w[0], s = 0;
    for (uint32_t t = 0; t < pb.T; ++t) m = std::max(m, w[t]);
    for (uint32_t t = 0; t < pb.T; ++t) s += std::exp(w[t] - m);
    for (uint32_t t = 0; t < pb.T; ++t) A[size_t(k) * pb.T + t] = std::exp(w[t] - m) / s;
  }
  std::vector<double> Vd(V.begin(), V.end());
  return scb::population_loss(pb, Vd.data(), A.data());
}

TEST(Softmax, PopulationLogitStepMatchesFiniteDifferences) {
  // One population step with lr_V = 0 moves the logits by -lr_A * (dL/dw_k) / mu_k.
  const scb::Config cfg = make_config({{"problem", {{"N", 3}, {"T", 8}, {"Q", 2}, {"seed", 3}}},
                                       {"model", {{"attention", "softmax"}}},
                                       {"train", {{"algorithm", "population"}, {"steps", 1}, {"lr_V", 0.0},
                                                  {"lr_A", 0.5}, {"stage1_steps", 0}}}});
  auto pb = scb::make_problem(cfg);
  scb::RunPack pack;
  pack.add_run(cfg, pb);
  // Move away from the uniform start so the gradient has structure.
  for (size_t e = 0; e < pack.A.size(); ++e) pack.A[e] = static_cast<float>(0.3 * std::sin(1.7 * double(e)));
  for (size_t e = 0; e < pack.V.size(); ++e) pack.V[e] = static_cast<float>(0.2 + 0.1 * std::cos(double(e)));
  const std::vector<float> W0 = pack.A, V0 = pack.V;
  auto backend = scb::make_cpu_backend(1);
  backend->attach(pack);
  backend->step();
  ASSERT_EQ(pack.status[0], scb::RunStatus::running);
  std::vector<double> W(W0.begin(), W0.end());
  const double h = 1e-5;
  for (uint32_t k = 0; k < pb->N; ++k)
    for (uint32_t t = 0; t < pb->T; ++t) {
      const size_t e = size_t(k) * pb->T + t;
      W[e] = W0[e] + h;
      const double up = softmax_loss(*pb, V0, W);
      W[e] = W0[e] - h;
      const double down = softmax_loss(*pb, V0, W);
      W[e] = W0[e];
      const double expected_step = -0.5 * (up - down) / (2 * h) / pb->mu[k];
      EXPECT_NEAR(double(pack.A[e]) - double(W0[e]), expected_step, 2e-6 + 1e-3 * std::abs(expected_step))
          << "column " << k << " position " << t;
    }
}

TEST(Softmax, SampledStepKeepsAttentionAndMetricsOnSoftmax) {
  const scb::Config cfg = make_config({{"model", {{"attention", "softmax"}}},
                                       {"train", {{"algorithm", "sgd"}, {"steps", 50}, {"lr_A", 20.0}}},
                                       {"eval", {{"every", 25}}}});
  auto pb = scb::make_problem(cfg);
  scb::RunPack pack;
  pack.add_run(cfg, pb);
  auto backend = scb::make_cpu_backend(1);
  const auto results = scb::train_pack(pack, *backend);
  ASSERT_EQ(results[0].status, scb::RunStatus::done);
  const std::vector<float> a = scb::attention_matrix(pack, 0);
  for (uint32_t k = 0; k < pack.N; ++k) {
    double s = 0;
    for (uint32_t t = 0; t < pack.T; ++t) s += a[size_t(k) * pack.T + t];
    EXPECT_NEAR(s, 1.0, 1e-5);
  }
  const scb::Metrics m = scb::compute_metrics(*pb, pack.V_of(0), a.data());
  EXPECT_DOUBLE_EQ(m.loss, results[0].final_metrics.loss);
}

TEST(Softmax, ProximalIsRefused) {
  EXPECT_THROW(make_config({{"model", {{"attention", "softmax"}}}, {"train", {{"algorithm", "proximal"}}}}),
               scb::ConfigError);
}

class TransferFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("scb_transfer_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(TransferFiles, InitFromFilesLoadsVAndAByShape) {
  const uint32_t N = 3, T = 10;
  std::vector<double> V(N * N), A(T * N);
  for (size_t e = 0; e < V.size(); ++e) V[e] = 0.1 * double(e);
  for (size_t e = 0; e < A.size(); ++e) A[e] = 0.01 * double(e);  // T x N, C order
  scb::write_npy(dir_ / "V.npy", {N, N}, V.data());
  scb::write_npy(dir_ / "A.npy", {T, N}, A.data());
  const scb::Config cfg = scb::resolve_config(
      {{"problem", {{"N", N}, {"T", T}}}, {"model", {{"init", {{"V", "V.npy"}, {"A", "A.npy"}}}}}}, dir_);
  auto pb = scb::make_problem(cfg);
  scb::RunPack pack;
  pack.add_run(cfg, pb);
  for (size_t e = 0; e < V.size(); ++e) EXPECT_FLOAT_EQ(pack.V[e], float(V[e]));
  for (uint32_t t = 0; t < T; ++t)
    for (uint32_t k = 0; k < N; ++k) EXPECT_FLOAT_EQ(pack.A[size_t(k) * T + t], float(A[size_t(t) * N + k]));
}

TEST_F(TransferFiles, WrongShapeOrMissingFileIsAConfigError) {
  std::vector<double> V(4, 0.5);
  scb::write_npy(dir_ / "V2.npy", {2, 2}, V.data());
  const json base = {{"problem", {{"N", 3}, {"T", 10}}}};
  auto try_init = [&](json init) {
    json user = base;
    user["model"]["init"] = init;
    const scb::Config cfg = scb::resolve_config(user, dir_);
    auto pb = scb::make_problem(cfg);
    scb::RunPack pack;
    pack.add_run(cfg, pb);
  };
  try {
    try_init({{"V", "V2.npy"}});
    FAIL() << "a 2 x 2 V for N = 3 was accepted";
  } catch (const scb::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.init.V"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("expected (3, 3)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(try_init({{"A", "missing.npy"}}), scb::ConfigError);
  EXPECT_THROW(scb::resolve_config({{"model", {{"init", {{"W", "x.npy"}}}}}}, dir_), scb::ConfigError);
}

TEST_F(TransferFiles, CorrelatedPMixesTheGivenMatrix) {
  const uint32_t N = 4;
  const scb::Config fresh = scb::resolve_config({{"problem", {{"N", N}, {"seed", 9}}}}, dir_);
  auto p_fresh = scb::make_problem(fresh);
  scb::write_npy(dir_ / "P0.npy", {N, N}, p_fresh->P.data());
  // rho = 1 reproduces the given P; rho = 0 the seed's own draw; in between, the mixture.
  for (double rho : {0.0, 0.3, 1.0}) {
    const scb::Config cfg = scb::resolve_config(
        {{"problem", {{"N", N}, {"seed", 2}, {"P", {{"dirichlet", 1.0}, {"mix", "P0.npy"}, {"rho", rho}}}}}}, dir_);
    auto own = scb::make_problem(scb::resolve_config({{"problem", {{"N", N}, {"seed", 2}}}}, dir_));
    auto pb = scb::make_problem(cfg);
    for (size_t e = 0; e < pb->P.size(); ++e)
      EXPECT_NEAR(pb->P[e], rho * p_fresh->P[e] + (1 - rho) * own->P[e], 1e-15);
  }
  EXPECT_THROW(scb::resolve_config({{"problem", {{"P", {{"dirichlet", 1.0}, {"mix", "P0.npy"}}}}}}, dir_),
               scb::ConfigError);
  EXPECT_THROW(scb::resolve_config({{"problem", {{"P", {{"dirichlet", 1.0}, {"mix", "P0.npy"}, {"rho", 1.5}}}}}}, dir_),
               scb::ConfigError);
}

}  // namespace

namespace {

// First number of samples at which an evaluated dist_A_norm is <= target (-1 if never).
int64_t samples_to_reach(const scb::RunResult& res, double target) {
  for (const scb::Metrics& m : res.curve)
    if (m.dist_A_norm <= target) return m.samples;
  return -1;
}

scb::RunResult train_one(const scb::Config& cfg) {
  auto pb = scb::make_problem(cfg);
  scb::RunPack pack;
  pack.add_run(cfg, pb);
  auto backend = scb::make_cpu_backend(1);
  return scb::train_pack(pack, *backend)[0];
}

// Issue 5 acceptance: on a task sharing P with the pretraining task but with its own Q,
// fine-tuning from the pretrained V with stage1_steps = 0 reaches dist_A_norm <= 0.3 with at
// most half the samples that training from scratch needs.
TEST_F(TransferFiles, PretrainedValueSkipsTheFirstStage) {
  const json reference = scb::load_json_file(std::filesystem::path(SCB_SOURCE_DIR) / "configs/reference.json");
  json pre = reference;
  pre["eval"]["every"] = 100;
  const scb::Config pre_cfg = scb::resolve_config(pre, dir_);
  auto pre_pb = scb::make_problem(pre_cfg);
  scb::RunPack pre_pack;
  pre_pack.add_run(pre_cfg, pre_pb);
  auto backend = scb::make_cpu_backend(1);
  scb::train_pack(pre_pack, *backend);
  scb::write_npy(dir_ / "P.npy", {3, 3}, pre_pb->P.data());
  scb::write_npy(dir_ / "V.npy", {3, 3}, pre_pack.V_of(0));

  for (uint64_t seed : {5u, 11u}) {
    json down = pre;
    down["problem"]["seed"] = seed;  // a new Q
    down["problem"]["P"] = "P.npy";  // the shared P
    const scb::RunResult scratch = train_one(scb::resolve_config(down, dir_));
    down["model"]["init"] = {{"V", "V.npy"}};
    down["train"]["stage1_steps"] = 0;
    const scb::RunResult tuned = train_one(scb::resolve_config(down, dir_));
    const int64_t s_scratch = samples_to_reach(scratch, 0.3), s_tuned = samples_to_reach(tuned, 0.3);
    ASSERT_GT(s_scratch, 0) << "seed " << seed << ": training from scratch never reached 0.3";
    ASSERT_GT(s_tuned, 0) << "seed " << seed << ": fine-tuning never reached 0.3";
    EXPECT_LE(2 * s_tuned, s_scratch) << "seed " << seed << ": fine-tuned " << s_tuned << " samples, scratch " << s_scratch;
  }
}

}  // namespace
