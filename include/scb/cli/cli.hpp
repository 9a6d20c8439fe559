#pragma once
// Subcommands of the `scb` tool. Each registers itself on the CLI11 app; a handler returns
// the process exit status (0 ok, 2 bad input, 1 failure during work).
#include <CLI/CLI.hpp>

namespace scb {

void add_train_command(CLI::App& app, int& status);
void add_sweep_command(CLI::App& app, int& status);
void add_merge_command(CLI::App& app, int& status);
void add_bench_command(CLI::App& app, int& status);

}  // namespace scb
