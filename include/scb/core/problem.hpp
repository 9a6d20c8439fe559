#pragma once
// The SCB data model of docs/model.md section 1: P, mu and the sparse Q, generated from a seed with the
// counter-based generator or given explicitly and validated, plus the alias tables the
// samplers draw from.
#include <cstdint>
#include <functional>
#include <utility>
#include <memory>
#include <vector>

#include "scb/core/alias.hpp"
#include "scb/core/config.hpp"
#include "scb/core/model.hpp"

namespace scb {

struct Problem {
  uint32_t N = 0;
  uint32_t T = 0;
  uint32_t Q = 0;                 // largest support size
  std::vector<double> P;          // N x N row-major: P[i*N + j] = Pr(next = i | current = j)
  std::vector<double> mu;         // stationary distribution, P mu = mu
  std::vector<uint32_t> q_ptr;    // N + 1 CSR offsets
  std::vector<uint32_t> q_pos;    // positions in [0, T), ascending within a column
  std::vector<double> q_w;        // weights, each column sums to 1
  // Sampling tables (docs/rng.md).
  AliasTable mu_table;
  std::vector<uint32_t> P_threshold, P_alias;  // row j = table of column P[:, j]
  std::vector<uint32_t> q_threshold, q_alias;  // CSR like q_pos
  double bayes_loss = 0.0;        // L(P, Q): the floor of the excess loss

  ProblemView view() const;
  // Q as a dense matrix stored by columns: Qd[k*T + t] = q^(k)_t (the layout of A).
  std::vector<double> dense_Q_by_columns() const;
};

// Builds the problem of a resolved config (generated or loaded, then validated).
// Throws ConfigError naming the key when explicit inputs are inconsistent.
std::shared_ptr<const Problem> make_problem(const Config& cfg);

// Builds a problem from explicit P (row-major N x N) and dense Q (by columns, k*T + t),
// validating both; `what_P`/`what_Q` name the keys in errors.
Problem problem_from_matrices(uint32_t N, uint32_t T, std::vector<double> P,
                              const std::vector<double>& Q_by_columns, uint32_t max_support,
                              const std::string& what_P, const std::string& what_Q);

// Stationary distribution of a column-stochastic P (N x N row-major), double precision.
std::vector<double> stationary_distribution(const std::vector<double>& P, uint32_t N);
// Throws ConfigError(what + ...) unless P is column-stochastic, irreducible and aperiodic.
void validate_transition_matrix(const std::vector<double>& P, uint32_t N, const std::string& what);

// Gamma(alpha, 1) from the Philox stream (Marsaglia-Tsang), deterministic in its coordinates.
double gamma_draw(uint64_t seed, double alpha, uint32_t stream, uint32_t c1, uint32_t c2);
// n Gamma(alpha) draws (counters(m) = their c1, c2) normalised to sum 1: a Dirichlet(alpha) draw.
// Exactly g_m / sum g when that sum is positive; when every draw underflows (alpha far below 1)
// the same draws normalised in log space.
std::vector<double> dirichlet_draw(uint64_t seed, double alpha, uint32_t stream, uint32_t n,
                                   const std::function<std::pair<uint32_t, uint32_t>(uint32_t)>& counters);

}  // namespace scb
