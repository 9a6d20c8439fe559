#pragma once
// docs/model.md sections 4 and 6: the exact population loss L(V, A), its gradients and the reported metrics,
// in double precision. All O(N^2 + T N): the sums over k only need per-column scalars
// (q.a, s_a, ||a||^2), and P mu = mu collapses the N^3 products.
#include <cstdint>
#include <vector>

#include "scb/core/problem.hpp"

namespace scb {

// V: N x N row-major; A by columns (A[k*T + t] = a^(k)_t). Float or double parameters.
template <typename Real>
double population_loss(const Problem& pb, const Real* V, const Real* A);

// dL/da^(k)_t = base[k] + slope[k] * a_t + spike[k] * q^(k)_t: the A-gradient is affine in a
// plus a multiple of q, so a backend can form it on the fly in its update pass (no T x N buffer).
// mean[k] is its mean over positions (for the projection).
// a_dot[k] = sum_t a_t dL/da^(k)_t, which the softmax variant needs for dL/dw = a (dL/da - a_dot).
struct AttentionGradientTerms {
  std::vector<double> base, slope, spike, mean, a_dot;
};

// Fills dV (N x N row-major, may be null) and returns the per-column terms of dA.
template <typename Real>
AttentionGradientTerms population_gradient_terms(const Problem& pb, const Real* V, const Real* A, double* dV);

// Gradients of L: dV (N x N row-major), dA by columns. Either output may be null.
template <typename Real>
void population_gradient(const Problem& pb, const Real* V, const Real* A, double* dV, double* dA);

// L(P, Q), the Bayes risk, from the sparse Q (no dense T x N matrix).
double bayes_loss(const Problem& pb);

struct Metrics {
  int64_t step = 0;
  int64_t samples = 0;
  double loss = 0, excess_loss = 0;
  double dist_V = 0, dist_A = 0, dist_V_norm = 0, dist_A_norm = 0;
  int64_t nnz_A = 0;
  // Every column's Q largest entries sit exactly on the support of q^(k) (strictly above every
  // other entry): the end of the signal-boosting stage. Not a curves.csv column.
  bool support_recovered = false;
};

// dist_V and dist_V_norm of section 6 (Frobenius distances of V and V-hat to P).
template <typename Real>
void value_distances(const Problem& pb, const Real* V, Metrics& m);

// Whether A's Q largest entries of every column are exactly the support of q^(k).
template <typename Real>
bool support_recovered(const Problem& pb, const Real* A);

// Every column of section 6 except step and samples.
template <typename Real>
Metrics compute_metrics(const Problem& pb, const Real* V, const Real* A);

// The final normalisation of docs/model.md section 5: a-hat = [a]_+ / 1^T [a]_+ (uniform when all <= 0).
template <typename Real>
void normalize_attention_column(const Real* a, uint32_t T, double* out);
// V-hat: each column of V divided by its sum.
template <typename Real>
void normalize_value_columns(const Real* V, uint32_t N, double* out);

}  // namespace scb
