// Phase 1 of a CPU step (sampled algorithms), one (run, sample) at a time: forward_sample of
// scb/cpu/sample.hpp draws the tokens and forms h, the counts, r and g (reading the queried column
// through its pending scale, and V transposed from N = kVtMinN on); softmax attention also keeps
// h.g, the sample's a . dl/da. Samples write disjoint rows, so any thread may take any sample.
// forward_samples draws the tokens of up to kSamplesPerDraw short samples at once first (and
// forward_batch their metas, kMetasPerDraw at a time);
// forward_pair takes two samples at once (at N <= 4 their scatters run side by side), and
// forward_range steps samples b0 .. b1 - 1 with both (a phase-1 item of samples_per_item samples)
// and forward_batch a run's whole batch, as whole_run_step does.
#include "cpu_phases.hpp"
#include "scb/cpu/sample.hpp"

namespace scb::cpu {

namespace {

// What a sample leaves in its run's rows besides h, r, g and the counts.
void record(CpuState& st, uint32_t r, uint32_t b, const SampleResult& res) {
  RunScratch& s = st.runs[r];
  s.m[b] = res.a_mean;
  s.k[b] = res.k;
  if (st.softmax()) {
    const size_t row = size_t(b) * st.row;
    const double* h = s.h.data() + row;
    const double* g = s.g.data() + row;
    double hg = 0;
    for (uint32_t j = 0; j < st.pack->N; ++j) hg += h[j] * g[j];
    s.hg[b] = hg;
  }
}

SampleSlot<uint16_t> slot_of(CpuState& st, uint32_t r, uint32_t b, const uint16_t* drawn, const SampleMeta* meta) {
  RunScratch& s = st.runs[r];
  const size_t row = size_t(b) * st.row;
  return {b, s.tokens.data() + size_t(b) * st.pack->T, s.h.data() + row, s.counts.data() + row,
          s.r.data() + row, s.g.data() + row, drawn, meta};
}

}  // namespace

void forward(CpuState& st, uint32_t r, uint32_t b, const uint16_t* drawn, const SampleMeta* meta) {
  RunPack& p = *st.pack;
  RunScratch& s = st.runs[r];
  const SampleSlot<uint16_t> q = slot_of(st, r, b, drawn, meta);
  record(st, r, b,
         forward_sample(p.problem(r).view(), p.V_of(r), st.attention(r), p.seed[r], static_cast<uint32_t>(p.step[r]),
                        b, q.tokens, q.h, q.counts, q.r, q.g, s.scaled ? s.scale.data() : nullptr,
                        s.VT.empty() ? nullptr : s.VT.data(), drawn, meta));
}

void forward_pair(CpuState& st, uint32_t r, uint32_t b, const double* A_wide, const uint16_t* drawn,
                  const SampleMeta* meta) {
  RunPack& p = *st.pack;
  RunScratch& s = st.runs[r];
  const SampleSlot<uint16_t> pair[2] = {slot_of(st, r, b, drawn, meta),
                                        slot_of(st, r, b + 1, drawn ? drawn + p.T : nullptr, meta ? meta + 1 : nullptr)};
  SampleResult res[2];
  forward_sample_pair(p.problem(r).view(), p.V_of(r), st.attention(r), p.seed[r], static_cast<uint32_t>(p.step[r]),
                      pair, res, s.scaled ? s.scale.data() : nullptr, s.VT.empty() ? nullptr : s.VT.data(), A_wide);
  record(st, r, b, res[0]);
  record(st, r, b + 1, res[1]);
}

void SampleRows::resize(uint32_t B, uint32_t N, uint32_t T, uint32_t row) {
  // A step that runs a whole batch on one thread (forward_batch) widens the columns where the
  // scatter reads them: a thread's lent rows, and a run's own when the adaptive count picks one
  // thread or the step is too small to share (without them that ran 3% slower than --threads 1).
  if (scatter_reads_wide(N)) a_wide.resize(size_t(N) * T);
  tokens.resize(size_t(B) * T);
  h.resize(size_t(B) * row);
  r.resize(size_t(B) * row);
  g.resize(size_t(B) * row);
  counts.resize(size_t(B) * row);
  k.resize(B);
  m.resize(B);
  hg.resize(B);
}

void SampleRows::lend(SampleRows& other) {
  tokens.swap(other.tokens), h.swap(other.h), r.swap(other.r), g.swap(other.g);
  counts.swap(other.counts), k.swap(other.k), m.swap(other.m), hg.swap(other.hg), a_wide.swap(other.a_wide);
}

void forward_samples(CpuState& st, uint32_t r, uint32_t b0, uint32_t count, const SampleMeta* meta,
                     const double* A_wide) {
  RunPack& p = *st.pack;
  // Straight into the run's token rows (consecutive samples' rows are consecutive).
  uint16_t* drawn = st.runs[r].tokens.data() + size_t(b0) * p.T;
  draw_sample_tokens(p.problem(r).view(), p.seed[r], static_cast<uint32_t>(p.step[r]), b0, count, drawn);
  static_assert(kSamplesPerDraw <= 2 * kMaxSamplePairs);
  RunScratch& s = st.runs[r];
  const uint32_t pairs = count / 2;
  SampleSlot<uint16_t> slot[kSamplesPerDraw];
  SampleResult res[kSamplesPerDraw];
  for (uint32_t i = 0; i < 2 * pairs; ++i) slot[i] = slot_of(st, r, b0 + i, drawn + size_t(i) * p.T, meta + i);
  forward_sample_pairs(p.problem(r).view(), p.V_of(r), st.attention(r), p.seed[r], static_cast<uint32_t>(p.step[r]),
                       slot, pairs, res, s.scaled ? s.scale.data() : nullptr, s.VT.empty() ? nullptr : s.VT.data(),
                       A_wide);
  for (uint32_t i = 0; i < 2 * pairs; ++i) record(st, r, b0 + i, res[i]);
  if (2 * pairs < count) forward(st, r, b0 + 2 * pairs, drawn + size_t(2 * pairs) * p.T, meta + 2 * pairs);
}

uint32_t samples_per_item(uint32_t T) { return T <= kTokenChunk ? kMetasPerDraw : 2; }

void forward_range(CpuState& st, uint32_t r, uint32_t b0, uint32_t b1, const double* A_wide) {
  if (st.pack->T <= kTokenChunk) {  // short samples: their metas and tokens drawn several at a time
    const RunPack& p = *st.pack;
    SampleMeta meta[kMetasPerDraw];
    for (uint32_t b = b0; b < b1; b += kMetasPerDraw) {
      const uint32_t m = std::min(kMetasPerDraw, b1 - b);
      draw_sample_metas(p.problem(r).view(), p.seed[r], static_cast<uint32_t>(p.step[r]), b, m, meta);
      for (uint32_t i = 0; i < m; i += kSamplesPerDraw)
        forward_samples(st, r, b + i, std::min(kSamplesPerDraw, m - i), meta + i, A_wide);
    }
    return;
  }
  uint32_t b = b0;
  for (; b + 2 <= b1; b += 2) forward_pair(st, r, b, A_wide);
  if (b < b1) forward(st, r, b);
}

void forward_batch(CpuState& st, uint32_t r) {
  RunScratch& s = st.runs[r];
  const double* A_wide = nullptr;
  if (!s.a_wide.empty()) {  // a thread's rows: the whole batch here, each column widened once for it
    widen_columns(st.attention(r), s.scaled ? s.scale.data() : nullptr, st.pack->N, st.pack->T, s.a_wide.data());
    A_wide = s.a_wide.data();
  }
  forward_range(st, r, 0, st.pack->batch_size[r], A_wide);
}

}  // namespace scb::cpu
