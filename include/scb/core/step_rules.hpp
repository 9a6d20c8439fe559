#pragma once
// The per-run decisions that end a step, written once for both backends: which stage a step is in
// (threshold, renormalise), which bad event makes a run diverged, what becomes of the pending
// column scales, and how step, samples and diverged_step move. The CPU backend
// (src/cpu/step_finish.cpp) and the CUDA kernels (kernels/update.cu, kernels/softmax.cu) call
// exactly these, so a run is judged and counted the same way on either; the CPU's convention is
// the reference (tests/test_step_rules.cpp pins every case).
#include <cfloat>
#include <cstdint>

#include "scb/core/hd.hpp"

namespace scb {

// What the A update of one step does besides the gradient step, decided from the run's step
// counter before the step. Plain SGD never thresholds nor renormalises, and neither does softmax
// attention (its logits are unconstrained); the other algorithms do from step stage1_steps on.
struct StepStage {
  bool threshold;    // S_tau(eta_A * lambda) follows the gradient step (lambda > 0)
  bool renormalize;  // every column is rescaled to sum 1 after the update
};

SCB_HD StepStage step_stage(bool sgd, bool softmax, int64_t step, int64_t stage1_steps, float lambda,
                            bool renormalize) {
  const bool proximal_stage = !sgd && !softmax && step >= stage1_steps;
  return StepStage{proximal_stage && lambda > 0.0f, proximal_stage && renormalize};
}

// A column whose sum is not positive and finite cannot be rescaled to sum 1 (NaN, +-inf, 0 and
// negative sums all count): the run is diverged. Written as one comparison chain so that host
// and device need no isfinite overload: sum > 0 excludes NaN, sum <= DBL_MAX excludes +inf.
SCB_HD bool column_drained(double sum) { return !(sum > 0.0 && sum <= DBL_MAX); }

// The bad events a backend collects while it updates one run.
struct StepFaults {
  bool v_out_of_range;  // an entry of V left [-limit, limit] (NaN included)
  bool a_out_of_range;  // an entry of A left it
  bool column_drained;  // renormalising: some column's sum was drained (column_drained)
};

// Whether the column sums decide anything: only a renormalising step whose parameters stayed in
// range looks at them (a backend may skip summing otherwise).
SCB_HD bool column_sums_decide(StepStage stage, bool v_out_of_range, bool a_out_of_range) {
  return stage.renormalize && !v_out_of_range && !a_out_of_range;
}

struct StepVerdict {
  bool diverged;           // the run stops, diverged at this step, whatever the cause
  bool rescale;            // the columns' 1/sum become the pending scales; otherwise every scale is 1
  bool refresh_attention;  // softmax: the attention cache follows the updated logits
};

SCB_HD StepVerdict step_verdict(StepStage stage, StepFaults f) {
  StepVerdict v;
  v.diverged = f.v_out_of_range || f.a_out_of_range ||
               (column_sums_decide(stage, f.v_out_of_range, f.a_out_of_range) && f.column_drained);
  v.rescale = stage.renormalize && !v.diverged;
  v.refresh_attention = !v.diverged;
  return v;
}

// The pending scale of a column after the step: 1/sum when the step rescales, else 1 for every
// column, the columns before a drained one included (a diverged run keeps A as the update left it).
SCB_HD float pending_scale(StepVerdict v, double column_sum) {
  return v.rescale ? static_cast<float>(1.0 / column_sum) : 1.0f;
}

// A run's counters.
struct RunCounters {
  int64_t step;           // steps completed
  int64_t samples;        // samples consumed (population: steps * B)
  int64_t diverged_step;  // -1 unless diverged
  bool diverged;
};

// A step counts whatever happened in it: its samples were drawn and its parameters written. So a
// run that diverges in the step that starts at counter s has taken s + 1 steps and records
// diverged_step = s + 1, for a bad V, a bad A or a drained column alike; a run already diverged
// keeps its first diverged_step.
SCB_HD RunCounters count_step(RunCounters c, uint32_t batch, bool diverged) {
  c.step += 1;
  c.samples += batch;
  if (diverged && !c.diverged) {
    c.diverged = true;
    c.diverged_step = c.step;
  }
  return c;
}

}  // namespace scb
