// `scb bench --sweeps` through the binary, on tiny sweeps: one record per (N, T, runs) under
// "sweeps" in the JSON, whose runs/s is R over the reference schedule's 4,000 SGD and 12,000
// proximal steps at the recorded step times, beside the limit on all cores; without a usable
// Python the peer's column says why instead of failing the bench. Nothing is timed against a bound.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.hpp"

namespace {

using nlohmann::json;

TEST(BenchSweeps, RecordsRunsPerSecondFromBothStages) {
  scbtest::TempDir dir("bench_sweeps");
  const std::string out = (dir / "b.json").string();
  const auto r = scbtest::run_scb("bench --no-grid --sweeps --sweep-runs 3,5 --sweep-N 3 --sweep-T 20 --seconds 0.02 "
                                  "--reps 1 --peer --peer-python /nonexistent/python3 --json " + scbtest::shell_quote(out),
                                  dir.path());
  ASSERT_EQ(r.status, 0) << r.err;
  const json doc = json::parse(scbtest::read_text(out));
  EXPECT_TRUE(doc["results"].empty());  // --no-grid
  ASSERT_EQ(doc["sweeps"].size(), 2u);
  for (const json& rec : doc["sweeps"]) {
    const double R = rec["runs"].get<double>();
    const double sgd = rec["sgd"]["step_seconds_median"].get<double>(), prox = rec["proximal"]["step_seconds_median"].get<double>();
    EXPECT_GT(sgd, 0);
    EXPECT_GT(prox, 0);
    EXPECT_NEAR(rec["runs_per_s"].get<double>(), R / (4000 * sgd + 12000 * prox), 1e-9 * rec["runs_per_s"].get<double>());
    EXPECT_NEAR(rec["sample_tokens_per_s"].get<double>(), R * 64 * 20 / prox, 1e-6 * R * 64 * 20 / prox);
    EXPECT_GT(rec["limit_tokens_per_s_all_threads"].get<double>(), 0);
    EXPECT_NE(rec["peer"]["skipped"].get<std::string>().find("not importable"), std::string::npos);
  }
  EXPECT_EQ(doc["sweeps"][0]["runs"], 3);
  EXPECT_EQ(doc["sweeps"][1]["runs"], 5);
  EXPECT_NE(r.out.find("no peer"), std::string::npos);
}

}  // namespace
