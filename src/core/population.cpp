#include "scb/core/population.hpp"

#include <cmath>

namespace scb {

namespace {

// The four V-dependent scalars of docs/model.md section 4 plus V mu.
struct VTerms {
  double c1, c2, c3, c4;
  std::vector<double> Vmu;
};

template <typename Real>
VTerms v_terms(const Problem& pb, const Real* V) {
  const uint32_t N = pb.N;
  const double* mu = pb.mu.data();
  VTerms t{0, 0, 0, 0, std::vector<double>(N, 0.0)};
  double trDPtV = 0, trDVtV = 0;
  for (uint32_t i = 0; i < N; ++i) {
    double vmu = 0;
    for (uint32_t j = 0; j < N; ++j) {
      const double v = static_cast<double>(V[size_t(i) * N + j]);
      vmu += v * mu[j];
      trDPtV += mu[j] * pb.P[size_t(i) * N + j] * v;
      trDVtV += mu[j] * v * v;
    }
    t.Vmu[i] = vmu;
  }
  double muVmu = 0, vmu2 = 0;
  for (uint32_t i = 0; i < N; ++i) {
    muVmu += mu[i] * t.Vmu[i];
    vmu2 += t.Vmu[i] * t.Vmu[i];
  }
  t.c1 = trDPtV - muVmu;
  t.c2 = muVmu;
  t.c3 = trDVtV - vmu2;
  t.c4 = vmu2;
  return t;
}

// Per-column scalars: q.a, s_a, s_q, ||a||^2.
struct ColumnTerms {
  double qa, sa, sq, n2;
};

// s_a and ||a||^2 of Cols consecutive columns: each column's sums run over t in ascending order
// from +0, the columns side by side in the vector lanes (Cols = 8), where one column's two sums
// would wait on the latency of every addition (T = 100,000: 3x faster on AVX-512 here). A
// population step and every evaluation make this pass over A; a remainder of fewer than eight
// columns takes them one at a time (Cols = 1), with the same bits.
template <int Cols, typename Real>
[[gnu::always_inline]] inline void column_sums_body(const Real* a, uint32_t T, double* sa, double* n2) {
  double s[Cols] = {}, q[Cols] = {};
  for (uint32_t t = 0; t < T; ++t)
    for (int c = 0; c < Cols; ++c) {
      const double x = static_cast<double>(a[size_t(c) * T + t]);
      s[c] += x;
      q[c] += x * x;
    }
  for (int c = 0; c < Cols; ++c) sa[c] = s[c], n2[c] = q[c];
}

#if defined(__x86_64__)
#define SCB_COLUMN_SUMS_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SCB_COLUMN_SUMS_CLONES
#endif
SCB_COLUMN_SUMS_CLONES void column_sums8(const float* a, uint32_t T, double sa[8], double n2[8]) {
  column_sums_body<8>(a, T, sa, n2);
}
SCB_COLUMN_SUMS_CLONES void column_sums8(const double* a, uint32_t T, double sa[8], double n2[8]) {
  column_sums_body<8>(a, T, sa, n2);
}
#undef SCB_COLUMN_SUMS_CLONES

double column_loss(const VTerms& v, const ColumnTerms& c) {
  return 0.5 - c.qa * v.c1 - c.sa * c.sq * v.c2 + 0.5 * c.n2 * v.c3 + 0.5 * c.sa * c.sa * v.c4;
}

// The terms of every column: s_a and ||a||^2 eight columns at a time, then q.a and s_q.
template <typename Real>
std::vector<ColumnTerms> all_column_terms(const Problem& pb, const Real* A) {
  std::vector<ColumnTerms> terms(pb.N);
  uint32_t k = 0;
  for (; k + 8 <= pb.N; k += 8) {
    double sa[8], n2[8];
    column_sums8(A + size_t(k) * pb.T, pb.T, sa, n2);
    for (int c = 0; c < 8; ++c) terms[k + c] = ColumnTerms{0, sa[c], 0, n2[c]};
  }
  for (; k < pb.N; ++k) {
    terms[k] = ColumnTerms{0, 0, 0, 0};
    column_sums_body<1>(A + size_t(k) * pb.T, pb.T, &terms[k].sa, &terms[k].n2);
  }
  for (k = 0; k < pb.N; ++k) {
    const Real* a = A + size_t(k) * pb.T;
    for (uint32_t s = pb.q_ptr[k]; s < pb.q_ptr[k + 1]; ++s) {
      terms[k].qa += pb.q_w[s] * static_cast<double>(a[pb.q_pos[s]]);
      terms[k].sq += pb.q_w[s];
    }
  }
  return terms;
}

}  // namespace

template <typename Real>
double population_loss(const Problem& pb, const Real* V, const Real* A) {
  const VTerms v = v_terms(pb, V);
  const std::vector<ColumnTerms> terms = all_column_terms(pb, A);
  double L = 0;
  for (uint32_t k = 0; k < pb.N; ++k) L += pb.mu[k] * column_loss(v, terms[k]);
  return L;
}

double bayes_loss(const Problem& pb) {
  const VTerms v = v_terms(pb, pb.P.data());
  double L = 0;
  for (uint32_t k = 0; k < pb.N; ++k) {
    ColumnTerms c{0, 0, 0, 0};
    for (uint32_t s = pb.q_ptr[k]; s < pb.q_ptr[k + 1]; ++s) {
      c.qa += pb.q_w[s] * pb.q_w[s];
      c.n2 += pb.q_w[s] * pb.q_w[s];
      c.sa += pb.q_w[s];
    }
    c.sq = c.sa;
    L += pb.mu[k] * column_loss(v, c);
  }
  return L;
}

template <typename Real>
AttentionGradientTerms population_gradient_terms(const Problem& pb, const Real* V, const Real* A, double* dV) {
  const uint32_t N = pb.N, T = pb.T;
  const double* mu = pb.mu.data();
  const VTerms v = v_terms(pb, V);
  AttentionGradientTerms g{std::vector<double>(N), std::vector<double>(N), std::vector<double>(N),
                           std::vector<double>(N), std::vector<double>(N)};
  double alpha = 0, beta = 0, gamma = 0, delta = 0;
  const std::vector<ColumnTerms> terms = all_column_terms(pb, A);
  for (uint32_t k = 0; k < N; ++k) {
    const ColumnTerms& c = terms[k];
    alpha += mu[k] * c.qa;
    beta += mu[k] * c.sa * c.sq;
    gamma += mu[k] * c.n2;
    delta += mu[k] * c.sa * c.sa;
    // dL/da^(k) = mu_k (-c1 q - c2 1 + c3 a + c4 s_a 1)
    g.base[k] = mu[k] * (-v.c2 + v.c4 * c.sa);
    g.slope[k] = mu[k] * v.c3;
    g.spike[k] = -mu[k] * v.c1;
    g.mean[k] = g.base[k] + (g.slope[k] * c.sa + g.spike[k] * c.sq) / T;
    g.a_dot[k] = g.base[k] * c.sa + g.slope[k] * c.n2 + g.spike[k] * c.qa;
  }
  if (dV) {
    // Exact derivative of the docs/model.md section 4 formula:
    // sum_k mu_k [ -(q.a)(P D - mu mu^T) - s_a s_q mu mu^T + ||a||^2 (V D - Vmu mu^T) + s_a^2 Vmu mu^T ]
    for (uint32_t i = 0; i < N; ++i)
      for (uint32_t j = 0; j < N; ++j) {
        const double p = pb.P[size_t(i) * N + j], x = static_cast<double>(V[size_t(i) * N + j]);
        dV[size_t(i) * N + j] = -alpha * p * mu[j] + (alpha - beta) * mu[i] * mu[j] +
                                gamma * x * mu[j] + (delta - gamma) * v.Vmu[i] * mu[j];
      }
  }
  return g;
}

template <typename Real>
void population_gradient(const Problem& pb, const Real* V, const Real* A, double* dV, double* dA) {
  const AttentionGradientTerms g = population_gradient_terms(pb, V, A, dV);
  if (!dA) return;
  const uint32_t T = pb.T;
  for (uint32_t k = 0; k < pb.N; ++k) {
    const Real* a = A + size_t(k) * T;
    double* d = dA + size_t(k) * T;
    for (uint32_t t = 0; t < T; ++t) d[t] = g.base[k] + g.slope[k] * static_cast<double>(a[t]);
    for (uint32_t s = pb.q_ptr[k]; s < pb.q_ptr[k + 1]; ++s) d[pb.q_pos[s]] += g.spike[k] * pb.q_w[s];
  }
}

template <typename Real>
void normalize_attention_column(const Real* a, uint32_t T, double* out) {
  double s = 0;
  for (uint32_t t = 0; t < T; ++t) s += std::max(static_cast<double>(a[t]), 0.0);
  for (uint32_t t = 0; t < T; ++t)
    out[t] = s > 0 ? std::max(static_cast<double>(a[t]), 0.0) / s : 1.0 / T;
}

template <typename Real>
void normalize_value_columns(const Real* V, uint32_t N, double* out) {
  for (uint32_t j = 0; j < N; ++j) {
    double s = 0;
    for (uint32_t i = 0; i < N; ++i) s += static_cast<double>(V[size_t(i) * N + j]);
    for (uint32_t i = 0; i < N; ++i) out[size_t(i) * N + j] = static_cast<double>(V[size_t(i) * N + j]) / s;
  }
}

template <typename Real>
void value_distances(const Problem& pb, const Real* V, Metrics& m) {
  const uint32_t N = pb.N;
  std::vector<double> Vn(size_t(N) * N);
  normalize_value_columns(V, N, Vn.data());
  double dv = 0, dvn = 0;
  for (size_t e = 0; e < size_t(N) * N; ++e) {
    const double d = static_cast<double>(V[e]) - pb.P[e], dn = Vn[e] - pb.P[e];
    dv += d * d;
    dvn += dn * dn;
  }
  m.dist_V = std::sqrt(dv);
  m.dist_V_norm = std::sqrt(dvn);
}

template <typename Real>
bool support_recovered(const Problem& pb, const Real* A) {
  const uint32_t T = pb.T;
  for (uint32_t k = 0; k < pb.N; ++k) {
    const Real* a = A + size_t(k) * T;
    double lowest_on = INFINITY, highest_off = -INFINITY;
    uint32_t s = pb.q_ptr[k];
    const uint32_t end = pb.q_ptr[k + 1];
    for (uint32_t t = 0; t < T; ++t) {  // q_pos of a column is ascending
      const double x = static_cast<double>(a[t]);
      if (s < end && pb.q_pos[s] == t) {
        lowest_on = std::min(lowest_on, x);
        ++s;
      } else {
        highest_off = std::max(highest_off, x);
      }
    }
    if (!(lowest_on > highest_off)) return false;  // a tie, or an off-support entry as large: not recovered
  }
  return true;
}

template <typename Real>
Metrics compute_metrics(const Problem& pb, const Real* V, const Real* A) {
  const uint32_t N = pb.N, T = pb.T;
  Metrics m;
  m.loss = population_loss(pb, V, A);
  m.excess_loss = m.loss - pb.bayes_loss;
  value_distances(pb, V, m);
  std::vector<double> an(T);
  double da = 0, dan = 0;
  int64_t nnz = 0;
  for (uint32_t k = 0; k < N; ++k) {
    const Real* a = A + size_t(k) * T;
    normalize_attention_column(a, T, an.data());
    // Distances to q^(k): dense part against zero, then correct the support entries.
    for (uint32_t t = 0; t < T; ++t) {
      const double x = static_cast<double>(a[t]);
      da += x * x;
      dan += an[t] * an[t];
      nnz += a[t] != Real(0);
    }
    for (uint32_t s = pb.q_ptr[k]; s < pb.q_ptr[k + 1]; ++s) {
      const uint32_t t = pb.q_pos[s];
      const double x = static_cast<double>(a[t]), q = pb.q_w[s];
      da += (x - q) * (x - q) - x * x;
      dan += (an[t] - q) * (an[t] - q) - an[t] * an[t];
    }
  }
  m.dist_A = std::sqrt(std::max(da, 0.0));
  m.dist_A_norm = std::sqrt(std::max(dan, 0.0));
  m.nnz_A = nnz;
  m.support_recovered = support_recovered(pb, A);
  return m;
}

#define SCB_INSTANTIATE(Real)                                                                  \
  template double population_loss<Real>(const Problem&, const Real*, const Real*);            \
  template AttentionGradientTerms population_gradient_terms<Real>(const Problem&, const Real*, \
                                                                  const Real*, double*);       \
  template void population_gradient<Real>(const Problem&, const Real*, const Real*, double*,  \
                                          double*);                                           \
  template Metrics compute_metrics<Real>(const Problem&, const Real*, const Real*);           \
  template bool support_recovered<Real>(const Problem&, const Real*);                         \
  template void value_distances<Real>(const Problem&, const Real*, Metrics&);                 \
  template void normalize_attention_column<Real>(const Real*, uint32_t, double*);             \
  template void normalize_value_columns<Real>(const Real*, uint32_t, double*);
SCB_INSTANTIATE(float)
SCB_INSTANTIATE(double)
#undef SCB_INSTANTIATE

}  // namespace scb
