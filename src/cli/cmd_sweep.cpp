// `scb sweep SWEEP.json --out DIR` and `scb merge OUT DIR...` (docs/formats.md sections 1, 3 and 5; issue 3).
#include <cstdio>

#include <fmt/format.h>

#include "scb/cli/cli.hpp"
#include "scb/cli/interrupt.hpp"
#include "scb/core/progress.hpp"
#include "scb/sweep/merge.hpp"
#include "scb/sweep/plan.hpp"
#include "scb/sweep/runner.hpp"
#include "scb/sweep/save_params.hpp"
#include "scb/sweep/shard.hpp"
#include "scb/sweep/tables.hpp"

namespace scb {

namespace {

struct SweepArgs {
  std::string sweep;
  std::string out;
  bool resume = false;
  std::string shard;
  std::string device = "auto";
  int threads = 0;
  std::string memory_budget;
  int64_t pack_runs = 0;
  std::string save_params;
  bool quiet = false;
  bool dry_run = false;
};

// A sweep stopped by SIGINT/SIGTERM: what is kept, and the command that goes on.
int report_interrupted(const SweepArgs& a, int signal) {
  const size_t kept = read_sweep_tables(a.out).run_ids.size();
  std::fprintf(stderr, "%s\n",
               fmt::format("scb sweep: stopped by {}; {} complete runs are kept in {}; continue with: scb sweep {} --out {} --resume",
                           signal_name(signal), kept, a.out, a.sweep, a.out)
                   .c_str());
  return 128 + signal;
}

int run_sweep_command(const SweepArgs& a) {
  SweepOptions o;
  SweepSummary s;
  try {
    if (a.out.empty()) throw ConfigError("--out: expected a directory, got an empty path");
    if (a.pack_runs < 0)
      throw ConfigError(fmt::format("--pack-runs: expected a non-negative integer (0 = automatic), got {}", a.pack_runs));
    o.poll = [](const TrainProgress&) { throw_if_interrupted(); };
    o.stopping = [] { return interrupt_signal() != 0; };
    o.sweep_file = a.sweep;
    o.out = a.out;
    o.resume = a.resume;
    if (!a.shard.empty()) {
      o.shard = parse_shard(a.shard);
      o.shard_given = true;
    }
    o.device = parse_device(a.device);
    o.threads = a.threads;
    if (!a.memory_budget.empty()) o.memory_budget = parse_byte_size(a.memory_budget);
    o.max_pack_runs = size_t(a.pack_runs);
    if (!a.save_params.empty()) {
      o.save_params = parse_save_params(a.save_params);
      o.save_params_given = true;
    }
    o.quiet = a.quiet;
    o.dry_run = a.dry_run;
    s = run_sweep(o);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "scb sweep: %s\n", e.what());
    return 2;
  } catch (const Interrupted& e) {
    return report_interrupted(a, e.signal);
  }
  if (a.dry_run) {
    std::printf("%s\n", fmt::format("sweep: {} runs in {} packs on {} workers; largest pack {:.1f} MiB of a {:.1f} MiB budget "
                                    "per worker (nothing written)",
                                    s.total, s.packs, s.workers, double(s.largest_pack_bytes) / 1048576.0,
                                    double(s.budget) / 1048576.0 / double(std::max<size_t>(1, s.workers)))
                            .c_str());
    return 0;
  }
  const size_t trained = s.ok + s.diverged;
  std::printf("%s\n",
              fmt::format("sweep: {} runs: {} trained ({} ok, {} diverged), {} already complete; {} packs on {} workers, {:.2f}s, {} sample-tokens/s -> {}",
                          s.total, trained, s.ok, s.diverged, s.skipped, s.packs, s.workers, s.wall_seconds,
                          format_rate(s.wall_seconds > 0 ? double(s.sample_tokens) / s.wall_seconds : 0), a.out)
                  .c_str());
  return 0;
}

}  // namespace

void add_sweep_command(CLI::App& app, int& status) {
  auto a = std::make_shared<SweepArgs>();
  CLI::App* cmd = app.add_subcommand("sweep", "Train every run of a sweep file (grid x zip x replicates) into one directory");
  cmd->add_option("sweep", a->sweep, "Sweep file (JSON): {\"base\": config, \"grid\": {...}, \"zip\": {...}, \"replicates\": n}")
      ->required();
  cmd->add_option("--out", a->out, "Output directory (new or empty; with --resume, the interrupted sweep's)")->required();
  cmd->add_flag("--resume", a->resume, "Continue an interrupted sweep in --out without redoing finished runs");
  cmd->add_option("--shard", a->shard,
                  "Take shard i of n (runs with index % n == i); default from SLURM_ARRAY_TASK_ID/_COUNT, else 0/1");
  cmd->add_option("--device", a->device, "cpu, cuda or auto (default auto)");
  cmd->add_option("--threads", a->threads, "CPU threads (0 = up to all cores, as many as run fastest)");
  cmd->add_option("--memory-budget", a->memory_budget,
                  "Bytes one pack of runs may use, such as 8G or 512M (default: half of the free memory)");
  cmd->add_option("--pack-runs", a->pack_runs, "At most this many runs per pack (default 0: automatic, 64 on the CPU, 4096 on a GPU)");
  cmd->add_option("--save-params", a->save_params,
                  "Write runs/<run_id>/ (A.npy, V.npy, Q.npy, ...): best (the best run of each algorithm, default), all or none");
  cmd->add_flag("--quiet,-q", a->quiet, "No progress line on stderr");
  cmd->add_flag("--dry-run", a->dry_run, "Validate and plan, print the plan, write nothing");
  cmd->callback([a, &status] {
    install_interrupt_handlers();
    status = run_sweep_command(*a);
  });
}

void add_merge_command(CLI::App& app, int& status) {
  auto out = std::make_shared<std::string>();
  auto dirs = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand("merge", "Combine the shard directories of one sweep into one sweep directory");
  cmd->add_option("out", *out, "Output directory (new or empty)")->required();
  cmd->add_option("dirs", *dirs, "Shard directories (scb sweep --shard i/n --out DIR)")->required();
  cmd->callback([out, dirs, &status] {
    try {
      if (out->empty()) throw ConfigError("merge: OUT: expected a directory, got an empty path");
      std::vector<std::filesystem::path> paths(dirs->begin(), dirs->end());
      const MergeSummary m = merge_sweep_dirs(*out, paths);
      std::printf("%s\n", fmt::format("merge: {} directories, {} runs, {} complete -> {}", m.dirs, m.runs, m.complete, *out).c_str());
      if (m.complete < m.runs)
        std::fprintf(stderr, "%s\n",
                     fmt::format("scb merge: {} runs are not finished; `scb sweep SWEEP.json --out {} --resume` completes them",
                                 m.runs - m.complete, *out)
                         .c_str());
      status = 0;
    } catch (const ConfigError& e) {
      std::fprintf(stderr, "scb merge: %s\n", e.what());
      status = 2;
    }
  });
}

}  // namespace scb
