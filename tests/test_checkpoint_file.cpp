// The checkpoint file's two readers agree: checkpoint_run_id (what a resume uses to sort
// checkpoints, without reading V and A) accepts exactly the files read_checkpoint accepts, and
// refuses a file cut short, one with bytes added, one whose array lengths were changed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "scb/core/checkpoint.hpp"
#include "scb/core/config.hpp"
#include "scb/core/problem.hpp"
#include "scb/core/runpack.hpp"
#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& p, const std::string& b) { std::ofstream(p, std::ios::binary) << b; }

// Whether a reader takes the file (a ConfigError: it refuses it).
template <typename Reader>
bool accepts(Reader read, const fs::path& p) {
  try {
    (void)read(p);
    return true;
  } catch (const scb::ConfigError&) {
    return false;
  }
}
bool full_reader_accepts(const fs::path& p) { return accepts(scb::read_checkpoint, p); }
bool shallow_reader_accepts(const fs::path& p) { return accepts(scb::checkpoint_run_id, p); }

TEST(CheckpointFile, RunIdReaderAcceptsExactlyWhatTheFullReaderAccepts) {
  const scb::Config cfg = scbtest::make_config(scbtest::json{{"problem", {{"N", 4}, {"T", 30}, {"Q", 2}}}});
  scb::RunPack pack;
  pack.add_run(cfg, scb::make_problem(cfg));
  pack.step[0] = 40;
  scb::RunResult res;
  for (int k = 0; k < 3; ++k) {
    scb::Metrics m;
    m.step = 20 * k;
    res.curve.push_back(m);
  }
  const fs::path dir = fs::temp_directory_path() / ("scb_ckpt_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path file = dir / "run.ckpt";
  scb::write_checkpoint(file, scb::checkpoint_of(pack, 0, res, "0123456789abcdef"));
  ASSERT_TRUE(full_reader_accepts(file));
  EXPECT_EQ(scb::checkpoint_run_id(file), "0123456789abcdef");
  const std::string whole = bytes_of(file);
  // V's length field sits after magic (8), the id's size (8), the id (16), N, T (8), three
  // counters (24) and the status (1).
  const size_t v_length_at = 8 + 8 + 16 + 8 + 24 + 1;
  std::string wrong_length = whole;
  wrong_length[v_length_at] = char(wrong_length[v_length_at] + 1);
  const std::string variants[] = {whole.substr(0, whole.size() - 1), whole + "x", whole.substr(0, 40), wrong_length,
                                  "SCBCKPT2" + whole.substr(8)};
  for (const std::string& v : variants) {
    write_bytes(file, v);
    EXPECT_FALSE(full_reader_accepts(file)) << v.size() << " bytes";
    EXPECT_FALSE(shallow_reader_accepts(file)) << v.size() << " bytes";
  }
  fs::remove_all(dir);
}

}  // namespace
