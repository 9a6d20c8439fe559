// Phase 1 of a CPU step (sampled algorithms), one (run, sample) at a time: forward_sample of
// scb/cpu/sample.hpp draws the tokens and forms h, the counts, r and g (reading the queried column
// through its pending scale, and V transposed from N = kVtMinN on); softmax attention also keeps
// h.g, the sample's a . dl/da. Samples write disjoint rows, so any thread may take any sample.
// forward_samples draws the tokens of up to kSamplesPerDraw short samples at once first.
#include "cpu_phases.hpp"
#include "scb/cpu/sample.hpp"

namespace scb::cpu {

void forward(CpuState& st, uint32_t r, uint32_t b, const uint32_t* drawn) {
  RunPack& p = *st.pack;
  RunScratch& s = st.runs[r];
  const uint32_t N = p.N, T = p.T;
  const size_t row = size_t(b) * st.row;
  const SampleResult res = forward_sample(
      p.problem(r).view(), p.V_of(r), st.attention(r), p.seed[r], static_cast<uint32_t>(p.step[r]), b,
      s.tokens.data() + size_t(b) * T, s.h.data() + row, s.counts.data() + row, s.r.data() + row,
      s.g.data() + row, s.scaled ? s.scale.data() : nullptr, s.VT.empty() ? nullptr : s.VT.data(), drawn);
  s.m[b] = res.a_mean;
  s.k[b] = res.k;
  if (st.softmax()) {
    const double* h = s.h.data() + row;
    const double* g = s.g.data() + row;
    double hg = 0;
    for (uint32_t j = 0; j < N; ++j) hg += h[j] * g[j];
    s.hg[b] = hg;
  }
}

void SampleRows::resize(uint32_t B, uint32_t T, uint32_t row) {
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
  counts.swap(other.counts), k.swap(other.k), m.swap(other.m), hg.swap(other.hg);
}

void forward_samples(CpuState& st, uint32_t r, uint32_t b0, uint32_t count) {
  RunPack& p = *st.pack;
  uint32_t drawn[kSamplesPerDraw * kTokenChunk];
  draw_sample_tokens(p.problem(r).view(), p.seed[r], static_cast<uint32_t>(p.step[r]), b0, count, drawn);
  for (uint32_t i = 0; i < count; ++i) forward(st, r, b0 + i, drawn + size_t(i) * p.T);
}

}  // namespace scb::cpu
