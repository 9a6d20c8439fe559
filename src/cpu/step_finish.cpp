// Phase 4 of a CPU step, one run at a time: the decisions of scb/core/step_rules.hpp (the ones
// the CUDA finish kernel makes too) applied to the CPU's state. The column sums of phase 3 are
// reduced in block order; a renormalising step turns them into pending scales that the next pass
// over A applies on its way (phase 1 reads the queried columns through them, phase 3 applies them
// while updating, evaluate() and download() when asked), saving a full read and write of A per
// step. Population mode rescales at once: its exact gradient reads A itself.
#include <algorithm>

#include "cpu_phases.hpp"

namespace scb::cpu {

namespace {

bool any(const std::vector<uint8_t>& v) {
  return std::any_of(v.begin(), v.end(), [](uint8_t x) { return x != 0; });
}

// col_total[k] = the column's tile sums in block order, up to the first drained column; returns
// whether there is one.
bool total_column_sums(CpuState& st, size_t r) {
  RunScratch& s = st.runs[r];
  const uint32_t N = st.pack->N;
  for (uint32_t k = 0; k < N; ++k) {
    double sum = 0;
    for (uint32_t blk = 0; blk < st.nblocks; ++blk) sum += s.col_sum[size_t(blk) * N + k];
    s.col_total[k] = sum;
    if (column_drained(sum)) return true;
  }
  return false;
}

}  // namespace

void finish_step(CpuState& st, size_t r) {
  RunPack& p = *st.pack;
  RunScratch& s = st.runs[r];
  const uint32_t N = p.N;
  const StepStage stage = st.stage(r);
  const bool a_bad = any(s.bad) || any(s.col_bad);
  if (st.sampled()) {
    s.scaled = false;  // phase 3 has applied the pending scales of every column
    std::fill(s.scale.begin(), s.scale.end(), 1.0f);
  }
  const bool sums_decide = column_sums_decide(stage, s.v_bad, a_bad);
  const bool drained = sums_decide && total_column_sums(st, r);
  const StepVerdict verdict = step_verdict(stage, StepFaults{s.v_bad, a_bad, drained});
  if (sums_decide)
    for (uint32_t k = 0; k < N; ++k) s.scale[k] = pending_scale(verdict, s.col_total[k]);
  if (verdict.rescale) {
    s.scaled = true;
    if (!st.sampled()) apply_pending_scale(st, r);
  }
  if (st.softmax() && verdict.refresh_attention) {
    if (st.sampled())
      for (uint32_t k : s.touched) refresh_attention(st, r, k);
    else
      for (uint32_t k = 0; k < N; ++k) refresh_attention(st, r, k);
  }
  const RunCounters c = count_step(RunCounters{p.step[r], p.samples[r], p.diverged_step[r],
                                               p.status[r] == RunStatus::diverged},
                                   p.batch_size[r], verdict.diverged);
  p.step[r] = c.step;
  p.samples[r] = c.samples;
  p.diverged_step[r] = c.diverged_step;
  if (c.diverged) p.status[r] = RunStatus::diverged;
}

}  // namespace scb::cpu
