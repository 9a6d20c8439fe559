// docs/formats.md through the `scb` binary: a successful run and its files (the saved matrices give
// back the reported loss), and bad input as a new user would type it: exit status 2, one line
// on stderr naming the key, nothing written, an existing output directory left alone.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "scb/core/backend.hpp"
#include "scb/cuda/cuda_backend.hpp"
#include "scb/core/npy.hpp"
#include "scb/core/output.hpp"
#include "scb/core/population.hpp"
#include "scb/core/problem.hpp"
#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using scbtest::json;
using scbtest::shell_quote;

// A T x N matrix read from a .npy file (C order) laid out by columns, like the engine's A.
std::vector<double> by_columns(const scb::NpyArray& m, uint32_t N, uint32_t T) {
  std::vector<double> c(size_t(N) * T);
  for (uint32_t t = 0; t < T; ++t)
    for (uint32_t k = 0; k < N; ++k) c[size_t(k) * T + t] = m.data[size_t(t) * N + k];
  return c;
}

const json kSmallRun = {{"problem", {{"N", 3}, {"T", 20}, {"Q", 2}, {"seed", 3}}},
                        {"train", {{"steps", 50}, {"batch_size", 8}, {"stage1_steps", 20}, {"lambda", 0.01}}},
                        {"eval", {{"every", 10}}}};

std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

class Cli : public ::testing::Test {
 protected:
  scbtest::TempDir tmp{"cli"};

  fs::path write_config(const std::string& name, const std::string& text) {
    const fs::path p = tmp / name;
    scbtest::write_text(p, text);
    return p;
  }
  fs::path write_config(const std::string& name, const json& doc) { return write_config(name, doc.dump(2)); }

  scbtest::CmdResult train(const fs::path& config, const fs::path& out, const std::string& extra = "") {
    return scbtest::run_scb("train " + shell_quote(config.string()) + " --out " + shell_quote(out.string()) +
                                " --device cpu --threads 1 " + extra,
                            tmp.path());
  }

  // Exit status 2, exactly one line on stderr containing `key`, nothing on stdout, no output.
  void expect_bad_input(const scbtest::CmdResult& r, const std::string& key, const fs::path& out) {
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_EQ(scbtest::count_lines(r.err), 1u) << "stderr: [" << r.err << "]";
    EXPECT_TRUE(!r.err.empty() && r.err.back() == '\n') << r.err;
    EXPECT_NE(r.err.find(key), std::string::npos) << "stderr does not name " << key << ": " << r.err;
    EXPECT_EQ(r.out, "") << r.out;
    EXPECT_FALSE(fs::exists(out)) << out << " was created";
  }
  void expect_bad_config(const json& doc, const std::string& key, const std::string& extra = "") {
    SCOPED_TRACE(doc.dump() + " " + extra);
    const fs::path cfg = write_config("bad.json", doc);
    const fs::path out = tmp / "out_bad";
    expect_bad_input(train(cfg, out, extra), key, out);
  }
};

TEST_F(Cli, SuccessfulRunWritesEveryFile) {
  const fs::path cfg = write_config("run.json", kSmallRun), out = tmp / "run";
  const scbtest::CmdResult r = train(cfg, out);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(scbtest::count_lines(r.out), 1u) << r.out;
  EXPECT_EQ(r.out.rfind("ok ", 0), 0u) << r.out;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(listing(out), (std::set<std::string>{"config.json", "curves.csv", "summary.json", "milestones.json", "P.npy", "Q.npy",
                                                 "mu.npy", "V.npy", "A.npy"}));

  // config.json: the resolved config, defaults filled in; it resolves to the same run.
  const json resolved = json::parse(scbtest::read_text(out / "config.json"));
  EXPECT_EQ(resolved["train"]["lambda"], 0.01);
  EXPECT_EQ(resolved["train"]["project"], true);
  EXPECT_EQ(resolved["train"]["lr_A"], 0.02);
  EXPECT_EQ(resolved["problem"]["P"], (json{{"dirichlet", 1.0}}));
  EXPECT_EQ(resolved["eval"]["every"], 10);
  EXPECT_NO_THROW(scb::resolve_config(resolved, out));

  // curves.csv: the docs/model.md section 6 header and one row per evaluation (0, 10, ..., 50).
  const std::string curves = scbtest::read_text(out / "curves.csv");
  EXPECT_EQ(curves.substr(0, curves.find('\n')), std::string(scb::kCurveHeader));
  EXPECT_EQ(std::string(scb::kCurveHeader), "step,samples,loss,excess_loss,dist_V,dist_A,dist_V_norm,dist_A_norm,nnz_A");
  EXPECT_EQ(scbtest::count_lines(curves), 7u);
  const std::string last = curves.substr(curves.rfind('\n', curves.size() - 2) + 1);
  EXPECT_EQ(last.rfind("50,400,", 0), 0u) << last;

  // summary.json.
  const json summary = json::parse(scbtest::read_text(out / "summary.json"));
  EXPECT_EQ(summary["status"], "ok");
  EXPECT_EQ(summary["steps"], 50);
  EXPECT_EQ(summary["samples"], 400);
  EXPECT_EQ(summary["final"]["step"], 50);
  for (const char* key : {"loss", "excess_loss", "dist_V", "dist_A", "dist_V_norm", "dist_A_norm", "nnz_A"}) {
    EXPECT_TRUE(summary["final"].contains(key)) << key;
    EXPECT_TRUE(summary["best"].contains(key)) << key;
  }
  EXPECT_TRUE(summary["wall_seconds"].is_number());
  EXPECT_TRUE(summary["tokens_per_second"].is_number());
  EXPECT_LE(summary["best"]["dist_A_norm"].get<double>(), summary["final"]["dist_A_norm"].get<double>());
  // The last curves row is the final point (10 significant digits in the CSV).
  const double csv_loss = std::stod(last.substr(7, last.find(',', 7) - 7));
  EXPECT_NEAR(csv_loss, summary["final"]["loss"].get<double>(), 1e-9);
  // milestones.json: the default levels in order, then support recovery.
  const json ms = json::parse(scbtest::read_text(out / "milestones.json"));
  ASSERT_EQ(ms["dist_A_norm"].size(), 3u);
  EXPECT_EQ(ms["dist_A_norm"][1]["threshold"], 0.3);
  EXPECT_TRUE(ms.contains("support_recovered"));
}

TEST_F(Cli, SavedMatricesReproduceTheReportedLoss) {
  const fs::path cfg = write_config("run.json", kSmallRun), out = tmp / "run";
  const scbtest::CmdResult r = train(cfg, out);
  ASSERT_EQ(r.status, 0) << r.err;
  const scb::NpyArray P = scb::read_npy(out / "P.npy"), Q = scb::read_npy(out / "Q.npy"), mu = scb::read_npy(out / "mu.npy"),
                      V = scb::read_npy(out / "V.npy"), A = scb::read_npy(out / "A.npy");
  const uint32_t N = 3, T = 20;
  EXPECT_EQ(P.shape, (std::vector<uint64_t>{N, N}));
  EXPECT_EQ(V.shape, (std::vector<uint64_t>{N, N}));
  EXPECT_EQ(Q.shape, (std::vector<uint64_t>{T, N}));
  EXPECT_EQ(A.shape, (std::vector<uint64_t>{T, N}));
  EXPECT_EQ(mu.shape, (std::vector<uint64_t>{N}));
  // Rebuild the problem from the files (Q and A are T x N: transpose to columns).
  const std::vector<double> Qc = by_columns(Q, N, T), Ac = by_columns(A, N, T);
  const scb::Problem pb = scb::problem_from_matrices(N, T, P.data, Qc, 2, "P.npy", "Q.npy");
  for (uint32_t i = 0; i < N; ++i) EXPECT_NEAR(mu.data[i], pb.mu[i], 1e-12);
  const json summary = json::parse(scbtest::read_text(out / "summary.json"));
  const double loss = scb::population_loss(pb, V.data.data(), Ac.data());
  const double reported = summary["final"]["loss"].get<double>();
  EXPECT_NEAR(loss, reported, 1e-5 * std::abs(reported));
  const scb::Metrics m = scb::compute_metrics(pb, V.data.data(), Ac.data());
  EXPECT_NEAR(m.excess_loss, summary["final"]["excess_loss"].get<double>(), 1e-5 * std::abs(reported));
  EXPECT_NEAR(m.dist_A_norm, summary["final"]["dist_A_norm"].get<double>(), 1e-6);
  EXPECT_NEAR(m.dist_V, summary["final"]["dist_V"].get<double>(), 1e-6);
  EXPECT_EQ(m.nnz_A, summary["final"]["nnz_A"].get<int64_t>());
  // And the same problem as the config generates.
  const auto gen = scb::make_problem(scbtest::make_config(kSmallRun));
  EXPECT_EQ(gen->P, P.data);
  EXPECT_EQ(gen->dense_Q_by_columns(), Qc);
}

TEST_F(Cli, RunsAreReproducibleAcrossThreadCounts) {
  const fs::path cfg = write_config("run.json", kSmallRun);
  ASSERT_EQ(train(cfg, tmp / "a").status, 0);
  const scbtest::CmdResult r = scbtest::run_scb(
      "train " + shell_quote(cfg.string()) + " --out " + shell_quote((tmp / "b").string()) + " --device cpu --threads 2",
      tmp.path());
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* f : {"V.npy", "A.npy", "curves.csv"})
    EXPECT_EQ(scbtest::read_text(tmp / "a" / f), scbtest::read_text(tmp / "b" / f)) << f;
}

TEST_F(Cli, EmptyExistingOutputDirectoryIsUsed) {
  const fs::path cfg = write_config("run.json", kSmallRun), out = tmp / "empty";
  fs::create_directory(out);
  const scbtest::CmdResult r = train(cfg, out);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(out / "summary.json"));
}

TEST_F(Cli, UnknownKey) { expect_bad_config({{"train", {{"lamda", 0.01}}}}, "train.lamda"); }

TEST_F(Cli, UnknownSection) { expect_bad_config({{"trian", {{"lambda", 0.01}}}}, "trian"); }

TEST_F(Cli, WrongType) {
  expect_bad_config({{"train", {{"steps", "many"}}}}, "train.steps");
  expect_bad_config({{"train", {{"project", "yes"}}}}, "train.project");
  expect_bad_config({{"problem", {{"N", 3.5}}}}, "problem.N");
  expect_bad_config({{"train", 5}}, "train");
}

TEST_F(Cli, OutOfRange) {
  expect_bad_config({{"problem", {{"N", 1}}}}, "problem.N");
  expect_bad_config({{"train", {{"lr_A", -1}}}}, "train.lr_A");
  expect_bad_config({{"train", {{"batch_size", 0}}}}, "train.batch_size");
  expect_bad_config({{"train", {{"algorithm", "adam"}}}}, "train.algorithm");
  expect_bad_config({{"problem", {{"P", {{"dirichlet", 0}}}}}}, "problem.P");
}

TEST_F(Cli, Inconsistent) {
  expect_bad_config({{"problem", {{"T", 5}, {"Q", 10}}}}, "problem.Q");
  expect_bad_config({{"train", {{"algorithm", "sgd"}, {"noise", 0.1}}}}, "train.noise");
}

TEST_F(Cli, MalformedJson) {
  const fs::path cfg = write_config("broken.json", std::string("{\"train\": {\"steps\": 10,}"));
  const fs::path out = tmp / "out_bad";
  expect_bad_input(train(cfg, out), "broken.json", out);
}

TEST_F(Cli, UnreadableConfig) {
  const fs::path out = tmp / "out_bad";
  expect_bad_input(train(tmp / "no_such_config.json", out), "no_such_config.json", out);
  // A directory where the file should be.
  fs::create_directory(tmp / "a_directory.json");
  expect_bad_input(train(tmp / "a_directory.json", out), "a_directory.json", out);
}

TEST_F(Cli, NonStochasticExplicitP) {
  expect_bad_config({{"problem", {{"N", 2}, {"P", {{0.6, 0.5}, {0.5, 0.5}}}}}}, "problem.P");
  expect_bad_config({{"problem", {{"N", 3}, {"P", {{0.5, 0.5}, {0.5, 0.5}}}}}}, "problem.P");  // wrong shape
  expect_bad_config({{"problem", {{"N", 2}, {"P", {{0.0, 1.0}, {1.0, 0.0}}}}}}, "problem.P");  // periodic
  expect_bad_config({{"problem", {{"N", 2}, {"P", "missing.npy"}}}}, "problem.P");
}

TEST_F(Cli, SetWithUnknownKey) {
  expect_bad_config(kSmallRun, "train.lamda", "--set train.lamda=0.1");
  expect_bad_config(kSmallRun, "train.steps", "--set train.steps=many");
  expect_bad_config(kSmallRun, "--set", "--set train.lambda");
}

TEST_F(Cli, CudaWithoutGpu) {
  if (scb::cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is visible";
  const fs::path cfg = write_config("run.json", kSmallRun), out = tmp / "out_bad";
  expect_bad_input(scbtest::run_scb("train " + shell_quote(cfg.string()) + " --out " + shell_quote(out.string()) +
                                        " --device cuda",
                                    tmp.path()),
                   "--device", out);
}

TEST_F(Cli, BadDeviceAndThreads) {
  const fs::path cfg = write_config("run.json", kSmallRun), out = tmp / "out_bad";
  expect_bad_input(scbtest::run_scb("train " + shell_quote(cfg.string()) + " --out " + shell_quote(out.string()) +
                                        " --device gpu",
                                    tmp.path()),
                   "--device", out);
  expect_bad_input(scbtest::run_scb("train " + shell_quote(cfg.string()) + " --out " + shell_quote(out.string()) +
                                        " --threads -1",
                                    tmp.path()),
                   "--threads", out);
}

TEST_F(Cli, CommandLineMistakes) {
  const fs::path out = tmp / "out_bad";
  // No config file given; an unknown option.
  expect_bad_input(scbtest::run_scb("train --out " + shell_quote(out.string()), tmp.path()), "config", out);
  const fs::path cfg = write_config("run.json", kSmallRun);
  expect_bad_input(scbtest::run_scb("train " + shell_quote(cfg.string()) + " --out " + shell_quote(out.string()) + " --bogus",
                                    tmp.path()),
                   "--bogus", out);
}

TEST_F(Cli, RunThatCannotFitInMemory) {
  expect_bad_config({{"problem", {{"N", 65535}, {"T", 4294967295ull}}}}, "problem.T");
}

TEST_F(Cli, NonEmptyOutputDirectoryIsLeftAlone) {
  const fs::path cfg = write_config("run.json", kSmallRun), out = tmp / "taken";
  fs::create_directory(out);
  scbtest::write_text(out / "keep.txt", "precious");
  const scbtest::CmdResult r = train(cfg, out);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(scbtest::count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(listing(out), std::set<std::string>{"keep.txt"});
  EXPECT_EQ(scbtest::read_text(out / "keep.txt"), "precious");
  // A file where the directory should be.
  scbtest::write_text(tmp / "a_file", "data");
  const scbtest::CmdResult f = train(cfg, tmp / "a_file");
  EXPECT_EQ(f.status, 2);
  EXPECT_NE(f.err.find("--out"), std::string::npos) << f.err;
  EXPECT_EQ(scbtest::read_text(tmp / "a_file"), "data");
}

TEST_F(Cli, BadPretrainedFileWritesNothing) {
  // model.init files are read after the output directory is prepared: it must disappear again.
  json doc = kSmallRun;
  doc["model"] = {{"init", {{"V", "no_such_V.npy"}}}};
  expect_bad_config(doc, "model.init.V");
}

TEST_F(Cli, BadPretrainedFileLeavesNoParentDirectories) {
  json doc = kSmallRun;
  doc["model"] = {{"init", {{"V", "no_such_V.npy"}}}};
  const fs::path cfg = write_config("bad.json", doc);
  const fs::path out = tmp / "new_parent" / "run";
  const scbtest::CmdResult r = train(cfg, out);
  EXPECT_EQ(r.status, 2);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(tmp / "new_parent")) << "scb train created a parent directory and left it behind";
}

TEST_F(Cli, BadPretrainedFileKeepsAnExistingEmptyDirectory) {
  json doc = kSmallRun;
  doc["model"] = {{"init", {{"V", "no_such_V.npy"}}}};
  const fs::path cfg = write_config("bad.json", doc);
  const fs::path out = tmp / "users_empty_dir";
  fs::create_directory(out);
  const scbtest::CmdResult r = train(cfg, out);
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(fs::is_directory(out)) << "scb train removed the user's existing (empty) output directory";
}

TEST_F(Cli, DivergedRunSummaryDescribesTheSavedMatrices) {
  // A run that blows up in its first step: summary.json's final point must describe the
  // V.npy/A.npy written beside it (or be null where the loss is not finite).
  json doc = kSmallRun;
  doc["train"]["lr_V"] = 1e9;
  const fs::path cfg = write_config("diverge.json", doc), out = tmp / "diverged";
  const scbtest::CmdResult r = train(cfg, out);
  ASSERT_EQ(r.status, 0) << r.err;
  const json summary = json::parse(scbtest::read_text(out / "summary.json"));
  EXPECT_EQ(summary["status"], "diverged");
  const scb::NpyArray P = scb::read_npy(out / "P.npy"), Q = scb::read_npy(out / "Q.npy"), V = scb::read_npy(out / "V.npy"),
                      A = scb::read_npy(out / "A.npy");
  const uint32_t N = 3, T = 20;
  const std::vector<double> Qc = by_columns(Q, N, T), Ac = by_columns(A, N, T);
  const scb::Problem pb = scb::problem_from_matrices(N, T, P.data, Qc, 2, "P.npy", "Q.npy");
  const double loss = scb::population_loss(pb, V.data.data(), Ac.data());
  if (summary["final"]["loss"].is_null()) {
    EXPECT_FALSE(std::isfinite(loss));
  } else {
    const double reported = summary["final"]["loss"].get<double>();
    EXPECT_NEAR(loss, reported, 1e-5 * std::abs(reported));
  }
  EXPECT_EQ(summary["samples"].get<int64_t>(), summary["steps"].get<int64_t>() * 8);
}

TEST(Npy, RoundTrip) {
  scbtest::TempDir dir("npy");
  const std::vector<double> d = {1.5, -2.25, 3e-300, 4e300, 0, -0.0};
  scb::write_npy(dir / "d.npy", {2, 3}, d.data());
  const scb::NpyArray a = scb::read_npy(dir / "d.npy");
  EXPECT_EQ(a.shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(a.data, d);
  const std::vector<float> f = {0.1f, -7.0f, 1e-30f};
  scb::write_npy(dir / "f.npy", {3}, f.data());
  const scb::NpyArray b = scb::read_npy(dir / "f.npy");
  EXPECT_EQ(b.shape, (std::vector<uint64_t>{3}));
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(b.data[i], double(f[i]));
  // The header is NumPy's format 1.0 with a 64-byte aligned data offset.
  const std::string raw = scbtest::read_text(dir / "f.npy");
  EXPECT_EQ(raw.substr(0, 6), "\x93NUMPY");
  EXPECT_EQ((raw.size() - 3 * sizeof(float)) % 64, 0u);
  EXPECT_NE(raw.find("'descr': '<f4'"), std::string::npos);
  EXPECT_NE(raw.find("'shape': (3,)"), std::string::npos);
  scbtest::write_text(dir / "junk.npy", "not a numpy file");
  EXPECT_THROW(scb::read_npy(dir / "junk.npy"), std::runtime_error);
  EXPECT_THROW(scb::read_npy(dir / "missing.npy"), std::runtime_error);
}

}  // namespace
