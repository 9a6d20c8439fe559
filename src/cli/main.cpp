// The `scb` command-line tool: train, sweep, merge and bench subcommands.
#include <csignal>
#include <cstdio>
#include <exception>

#include "scb/cli/cli.hpp"
#include "scb/core/config.hpp"

int main(int argc, char** argv) {
  // Past a file-size limit (RLIMIT_FSIZE, a quota) a write must fail with EFBIG and be reported
  // naming the file, not kill the process before it can say which file.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"scb: training engine for Sparse Contextual Bigram sweeps"};
  app.require_subcommand(1);
  int status = 0;
  scb::add_train_command(app, status);
  scb::add_sweep_command(app, status);
  scb::add_merge_command(app, status);
  scb::add_bench_command(app, status);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "scb: %s (see scb --help)\n", e.what());
    return 2;
  } catch (const scb::ConfigError& e) {
    std::fprintf(stderr, "scb: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "scb: error: %s\n", e.what());
    return 1;
  }
  return status;
}
