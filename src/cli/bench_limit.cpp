// `scb bench`, the token-drawing limit: the engine's own drawing (draw_tokens, AVX2 where
// available; draw_sample_tokens for samples of T <= kTokenChunk, as forward_samples draws them)
// over the T positions of whole samples and nothing else, on one thread and on all
// threads. Every figure of the bench is a fraction of it; its clocks live here too, since the
// engine timing reads the same ones.
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "scb/cli/bench.hpp"
#include "scb/cpu/token_draw.hpp"

namespace scb::bench {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds used by the whole process (all threads): on a loaded machine the CPU time of a
// single-threaded measurement is far steadier than its wall time.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

namespace {

struct Rate {
  double wall = 0, cpu = 0;  // per wall second, per CPU second of the process
};

// Sample-tokens per second of drawing alone (the words are summed so the work cannot be elided).
// On several threads each draws its own samples for the whole budget and nothing waits for
// anything: the limit is what the cores can draw, even where another process takes a core.
Rate token_limit(const ProblemView& pv, uint32_t T, int threads, double seconds, uint32_t& round) {
  const uint32_t per_thread = std::max<uint32_t>(1, static_cast<uint32_t>(std::ceil(2.0e5 / T)));
  std::vector<uint64_t> sink(size_t(threads) * 8, 0);
  std::vector<uint64_t> tokens(size_t(threads) * 8, 0);
  std::vector<uint32_t> rounds(size_t(threads), 0);
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = process_cpu_seconds();
  auto drawer = [&](int th) {
    uint16_t x[kSamplesPerDraw * kTokenChunk];
    uint64_t s = 0, n_tokens = 0;
    uint32_t r = round;
    const uint32_t end = (th + 1) * per_thread;
    do {
      if (T <= kTokenChunk) {  // as the engine draws short samples: several at a time
        for (uint32_t b = th * per_thread; b < end; b += kSamplesPerDraw) {
          const uint32_t count = std::min(kSamplesPerDraw, end - b);
          draw_sample_tokens(pv, 0x5eedull, r, b, count, x);
          for (uint32_t i = 0; i < count * T; ++i) s += x[i];
        }
      } else {  // and longer ones in forward_sample's chunks
        for (uint32_t b = th * per_thread; b < end; ++b)
          for (uint32_t pos = 0; pos < T; pos += kTokenChunk) {
            const uint32_t n = std::min(kTokenChunk, T - pos);
            draw_tokens(pv, 0x5eedull, r, b, pos, n, x);
            for (uint32_t i = 0; i < n; ++i) s += x[i];
          }
      }
      ++r;
      n_tokens += uint64_t(per_thread) * T;
    } while (seconds_since(t0) < seconds);
    sink[size_t(th) * 8] = s;
    tokens[size_t(th) * 8] = n_tokens;
    rounds[size_t(th)] = r;
  };
  std::vector<std::thread> pool;
  for (int th = 1; th < threads; ++th) pool.emplace_back(drawer, th);
  drawer(0);
  for (std::thread& t : pool) t.join();
  const double elapsed = seconds_since(t0);
  uint64_t total = 0, drawn = 0;
  for (uint64_t v : sink) total += v;
  for (uint64_t v : tokens) drawn += v;
  round = *std::max_element(rounds.begin(), rounds.end());
  if (total == 42) std::fputs("", stderr);  // keeps the sums alive
  return Rate{double(drawn) / elapsed, double(drawn) / std::max(process_cpu_seconds() - c0, 1e-9)};
}

}  // namespace

double memory_pass_seconds(uint64_t floats, int threads, int reps) {
  std::unique_ptr<float[]> a(new float[floats]);  // not zero-filled: each thread first touches its own share
  const uint64_t share = (floats + uint64_t(threads) - 1) / uint64_t(threads);
  auto pass = [&](bool first, float c) {
    std::vector<std::thread> pool;
    for (int th = 0; th < threads; ++th)
      pool.emplace_back([&, th] {
        float* p = a.get() + std::min(floats, share * uint64_t(th));
        float* end = a.get() + std::min(floats, share * uint64_t(th + 1));
        if (first)
          std::fill(p, end, 1.0f);
        else
          for (; p < end; ++p) *p = *p * c;
      });
    for (std::thread& t : pool) t.join();
  };
  pass(true, 1.0f);  // first touch and page faults, untimed
  std::vector<double> seconds;
  for (int rep = 0; rep < std::max(reps, 3); ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    pass(false, rep % 2 ? 1.0009765625f : 0.9990234375f);  // values stay finite and normal
    seconds.push_back(seconds_since(t0));
  }
  return median(seconds);
}

LimitMeter::LimitMeter(const BenchArgs& args, int all_threads)
    : budget_(std::clamp(args.seconds / args.reps * 0.2, 0.02, 0.25)), all_threads_(all_threads) {}

void LimitMeter::sample(const Problem& problem, uint64_t T, LimitSamples& into) {
  const Rate l1 = token_limit(problem.view(), uint32_t(T), 1, budget_, round_);
  into.one_thread.push_back(l1.wall);
  into.one_thread_cpu.push_back(l1.cpu);
  into.all_threads.push_back(all_threads_ > 1 ? token_limit(problem.view(), uint32_t(T), all_threads_, budget_, round_).wall
                                              : l1.wall);
}

// A step costs at least its token drawing, and the engine stays under ~40% of the limit: skip
// what would take longer than --max-step-seconds per step (judged on the first measurement).
std::string predicted_skip(const BenchCase& c, const BenchArgs& args, const LimitSamples& limit, json& rec) {
  const double tokens = double(c.R) * c.B * c.T;
  const double lim = c.threads > 1 ? limit.all_threads.front() : limit.one_thread.front();
  const double predicted = tokens / (0.4 * lim) + double(c.R) * c.N * c.T * 1e-9;
  rec["predicted_step_seconds"] = predicted;
  if (predicted > args.max_step_seconds)
    return fmt::format("predicted {:.1f} s per step > --max-step-seconds {}", predicted, args.max_step_seconds);
  return "";
}

}  // namespace scb::bench
