// `scb bench --contention`: does the default thread count ever lose to one thread? The bench
// starts its own competing busy process (a child spinning on the last core it may use), and
// times, interleaved repetition by repetition so that both see the same load, the default
// thread count (up to every core), one thread and a fixed count of every core, on a single run
// (N = 3, T = 10,000, B = 128) and a sweep pack (1,000 reference-sized runs: N = 3, T = 100,
// B = 64). The same is measured first with no busy process, for the speed-up on an idle machine.
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "scb/cli/bench.hpp"

namespace scb::bench {

namespace {

// A child process spinning on one core until destroyed (or until the bench dies).
class BusyProcess {
 public:
  BusyProcess() {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
      for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &allowed)) cpu_ = c;
    pid_ = fork();
    if (pid_ == 0) {  // the child: system calls only, then spin
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu_, &one);
      sched_setaffinity(0, sizeof(one), &one);
      for (;;) asm volatile("" ::: "memory");
    }
  }
  ~BusyProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  BusyProcess(const BusyProcess&) = delete;
  BusyProcess& operator=(const BusyProcess&) = delete;
  bool running() const { return pid_ > 0; }
  int cpu() const { return cpu_; }

 private:
  pid_t pid_ = -1;
  int cpu_ = 0;
};

struct Contender {
  const char* name;
  int request;  // the backend's thread argument (0: the default)
  CaseEngine engine;
  std::vector<double> step_seconds;
};

// The contenders of one case timed in turn, repetition by repetition; a record of the medians.
json time_interleaved(const BenchCase& c, const BenchPlan& plan, const BenchArgs& args,
                      std::shared_ptr<const Problem> problem) {
  Contender all[3] = {{"default", 0, {}, {}}, {"one_thread", 1, {}, {}}, {"all_threads_fixed", plan.all_threads, {}, {}}};
  double slowest = 0;
  for (Contender& k : all) {
    std::vector<Config> cfgs;
    for (uint64_t r = 0; r < c.R; ++r) cfgs.push_back(bench_config(c.N, c.T, c.B, r, "proximal"));
    k.engine.attach_configs(cfgs, plan.device, problem, k.request);
    k.engine.step_seconds(2);  // first touch
    // Long enough for the default to have tried and chosen its thread count (0.2 s in).
    const double one = k.engine.step_seconds(1);
    k.engine.step_seconds(std::max<int64_t>(1, int64_t(0.5 / std::max(one, 1e-7))));
    slowest = std::max(slowest, one);
  }
  const int64_t K = args.steps > 0 ? args.steps
                                   : std::max<int64_t>(1, int64_t(args.seconds / args.reps / std::max(slowest, 1e-7)));
  for (int rep = 0; rep < args.reps; ++rep)
    for (Contender& k : all) k.step_seconds.push_back(k.engine.step_seconds(K));
  json rec = {{"N", c.N}, {"T", c.T}, {"B", c.B}, {"runs", c.R}, {"steps_per_rep", K}};
  for (Contender& k : all) {
    const double med = median(k.step_seconds);
    rec[k.name] = {{"threads", k.request}, {"step_seconds", k.step_seconds}, {"step_seconds_median", med},
                   {"sample_tokens_per_s", double(c.R * c.B * c.T) / med}};
  }
  const double one = rec["one_thread"]["step_seconds_median"].get<double>();
  rec["default_over_one_thread"] = one / rec["default"]["step_seconds_median"].get<double>();
  rec["all_threads_fixed_over_one_thread"] = one / rec["all_threads_fixed"]["step_seconds_median"].get<double>();
  return rec;
}

}  // namespace

void run_contention_section(const BenchPlan& plan, BenchReport& report) {
  const BenchArgs& args = report.args();
  const BenchCase cases[2] = {{3, 10000, 128, 1, plan.all_threads, 0}, {3, 100, 64, 1000, plan.all_threads, 0}};
  if (!args.quiet)
    std::printf("\nscb bench --contention: speed over one thread (median step time), default and a fixed %d threads\n"
                "%-22s %5s %6s %4s %5s | %9s %9s %9s | %8s %8s\n",
                plan.all_threads, "load", "N", "T", "B", "runs", "1 thread", "default", "fixed", "default", "fixed");
  for (const bool busy : {false, true})
    for (const BenchCase& c : cases) {
      auto problem = make_problem(bench_config(c.N, c.T, c.B, 0, "proximal"));
      const auto load_start = load_average();
      std::unique_ptr<BusyProcess> hog;
      if (busy) hog = std::make_unique<BusyProcess>();
      json rec = time_interleaved(c, plan, args, problem);
      const int busy_cpu = busy ? hog->cpu() : -1;
      hog.reset();
      const std::string load = busy ? fmt::format("busy process on cpu {}", busy_cpu) : std::string("no busy process");
      rec["competing_process"] = busy ? json{{"cpu", busy_cpu}, {"pinned", true}} : json(nullptr);
      rec["load_average"] = {load_start[0], load_average()[0]};
      if (!args.quiet)
        std::printf("%-22s %5lu %6lu %4lu %5lu | %7.3fms %7.3fms %7.3fms | %7.2fx %7.2fx\n", load.c_str(),
                    (unsigned long)c.N, (unsigned long)c.T, (unsigned long)c.B, (unsigned long)c.R,
                    rec["one_thread"]["step_seconds_median"].get<double>() * 1e3,
                    rec["default"]["step_seconds_median"].get<double>() * 1e3,
                    rec["all_threads_fixed"]["step_seconds_median"].get<double>() * 1e3,
                    rec["default_over_one_thread"].get<double>(), rec["all_threads_fixed_over_one_thread"].get<double>());
      std::fflush(stdout);
      report.add_to("contention", std::move(rec));
    }
}

}  // namespace scb::bench
