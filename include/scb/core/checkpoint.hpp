#pragma once
// Checkpoints of runs in flight (train.checkpoint_every). The randomness is counter-based, so a
// run's whole state at an evaluation point is its counters, V, A and the curve so far: restored
// into a fresh pack and backend, it goes on exactly as if it had never stopped (tests check the
// bytes). One file per run, written atomically (write_file_atomic), so a kill while a checkpoint
// is written leaves the previous one.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "scb/core/runpack.hpp"
#include "scb/core/trainer.hpp"

namespace scb {

struct RunCheckpoint {
  std::string run_id;     // whose state this is (checked on restore)
  uint32_t N = 0, T = 0;
  int64_t step = 0, samples = 0, diverged_step = -1;
  RunStatus status = RunStatus::running;
  std::vector<float> V, A;  // A as the pack holds it (by columns; logits for softmax)
  RunResult result;         // the curve and best point so far
};

// The state of run r of a pack whose host arrays are current (after Backend::download).
RunCheckpoint checkpoint_of(const RunPack& pack, size_t r, const RunResult& result, const std::string& run_id);
void write_checkpoint(const std::filesystem::path& file, const RunCheckpoint& c);
// ConfigError naming the file when it is not a whole checkpoint of this format.
RunCheckpoint read_checkpoint(const std::filesystem::path& file);
// The run id of a checkpoint file, with its layout and size checked as read_checkpoint checks
// them but without reading V and A (a resume looks at every checkpoint before training reads
// the ones it needs: at N = 100, T = 1e5 each is 40 MB). ConfigError when it is not whole.
std::string checkpoint_run_id(const std::filesystem::path& file);
// Puts a checkpoint's state into run r of a pack built from the same config (std::logic_error
// when the shape differs).
void restore_checkpoint(RunPack& pack, size_t r, const RunCheckpoint& c);

// When a run is next due for a checkpoint: at the first evaluation point at least `steps` steps,
// or `seconds` of wall time, after the last one.
struct CheckpointClock {
  CheckpointEvery every;
  int64_t last_step = 0;
  double last_seconds = 0;
  bool due(int64_t step, double seconds) const;
  void taken(int64_t step, double seconds) { last_step = step, last_seconds = seconds; }
};

}  // namespace scb
