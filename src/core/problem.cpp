#include "scb/core/problem.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <queue>
#include <set>

#include <fmt/format.h>

#include "scb/core/npy.hpp"
#include "scb/core/philox.hpp"
#include "scb/core/population.hpp"

namespace scb {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Standard normal and uniform from one Philox call: (v0, v1) -> Box-Muller, (v2, v3) -> uniform.
struct NormalUniform {
  double z, u;
};
NormalUniform normal_uniform(uint64_t seed, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t stream) {
  const Philox4 w = philox(seed, c0, c1, c2, stream);
  const double u1 = uniform_open01(w.v[0], w.v[1]);
  const double u2 = uniform_open01(w.v[2], w.v[3] ^ 0x5bd1e995u);
  const Philox4 w2 = philox(seed, c0 | 0x40000000u, c1, c2, stream);
  return {std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2), uniform_open01(w2.v[0], w2.v[1])};
}

// Reads an N x M matrix from a JSON array of arrays or a .npy path (relative to base_dir).
std::vector<double> load_matrix(const nlohmann::json& spec, uint64_t rows, uint64_t cols,
                                const std::filesystem::path& base_dir, const std::string& key) {
  std::vector<double> m(rows * cols);
  if (spec.is_string()) {
    std::filesystem::path path = spec.get<std::string>();
    if (path.is_relative()) path = base_dir / path;
    m = read_npy_matrix(path, rows, cols, key);
  } else if (spec.is_array()) {
    if (spec.size() != rows)
      throw ConfigError(fmt::format("{}: expected {} rows, got {}", key, rows, spec.size()));
    for (uint64_t i = 0; i < rows; ++i) {
      const auto& row = spec[i];
      if (!row.is_array() || row.size() != cols)
        throw ConfigError(fmt::format("{}[{}]: expected an array of {} numbers", key, i, cols));
      for (uint64_t j = 0; j < cols; ++j) {
        if (!row[j].is_number())
          throw ConfigError(fmt::format("{}[{}][{}]: expected a number", key, i, j));
        m[i * cols + j] = row[j].get<double>();
      }
    }
  } else {
    throw ConfigError(fmt::format("{}: expected an array of arrays or a path to a .npy file", key));
  }
  for (uint64_t i = 0; i < m.size(); ++i)
    if (!std::isfinite(m[i]) || m[i] < 0)
      throw ConfigError(fmt::format("{}[{}][{}]: entries must be finite and non-negative, got {}",
                                    key, i / cols, i % cols, m[i]));
  return m;
}

void build_tables(Problem& pb) {
  pb.mu_table = build_alias_table(pb.mu);
  const uint32_t N = pb.N;
  pb.P_threshold.resize(size_t(N) * N);
  pb.P_alias.resize(size_t(N) * N);
  std::vector<double> col(N);
  for (uint32_t j = 0; j < N; ++j) {
    for (uint32_t i = 0; i < N; ++i) col[i] = pb.P[size_t(i) * N + j];
    const AliasTable t = build_alias_table(col);
    std::copy(t.threshold.begin(), t.threshold.end(), pb.P_threshold.begin() + size_t(j) * N);
    std::copy(t.alias.begin(), t.alias.end(), pb.P_alias.begin() + size_t(j) * N);
  }
  pb.q_threshold.resize(pb.q_pos.size());
  pb.q_alias.resize(pb.q_pos.size());
  for (uint32_t k = 0; k < N; ++k) {
    const uint32_t b = pb.q_ptr[k], e = pb.q_ptr[k + 1];
    const AliasTable t = build_alias_table(std::span<const double>(pb.q_w.data() + b, e - b));
    std::copy(t.threshold.begin(), t.threshold.end(), pb.q_threshold.begin() + b);
    std::copy(t.alias.begin(), t.alias.end(), pb.q_alias.begin() + b);
  }
  pb.Q = 0;
  for (uint32_t k = 0; k < N; ++k) pb.Q = std::max(pb.Q, pb.q_ptr[k + 1] - pb.q_ptr[k]);
}

void finish(Problem& pb) {
  build_tables(pb);
  pb.bayes_loss = bayes_loss(pb);
}

}  // namespace

namespace {

// One Gamma(alpha) draw as its two factors: Marsaglia-Tsang's Gamma(a) with a = alpha (or
// alpha + 1 when alpha < 1) and the boost U (1 when alpha >= 1); the draw is boosted * U^(1/alpha).
struct GammaFactors {
  double boosted;
  double u;
};

GammaFactors gamma_factors(uint64_t seed, double alpha, uint32_t stream, uint32_t c1, uint32_t c2) {
  const double a = alpha < 1 ? alpha + 1 : alpha;
  const double d = a - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (uint32_t attempt = 0;; ++attempt) {
    const NormalUniform nu = normal_uniform(seed, attempt, c1, c2, stream);
    const double v0 = 1.0 + c * nu.z;
    if (v0 <= 0) continue;
    const double v = v0 * v0 * v0;
    if (std::log(nu.u) < 0.5 * nu.z * nu.z + d - d * v + d * std::log(v)) {
      if (alpha >= 1) return {d * v, 1.0};
      const Philox4 w = philox(seed, 0x80000000u | attempt, c1, c2, stream);
      return {d * v, uniform_open01(w.v[0], w.v[1])};
    }
  }
}

}  // namespace

double gamma_draw(uint64_t seed, double alpha, uint32_t stream, uint32_t c1, uint32_t c2) {
  const GammaFactors f = gamma_factors(seed, alpha, stream, c1, c2);
  return alpha < 1 ? f.boosted * std::pow(f.u, 1.0 / alpha) : f.boosted;
}

std::vector<double> dirichlet_draw(uint64_t seed, double alpha, uint32_t stream, uint32_t n,
                                   const std::function<std::pair<uint32_t, uint32_t>(uint32_t)>& counters) {
  std::vector<double> x(n);
  double s = 0;
  for (uint32_t m = 0; m < n; ++m) s += x[m] = gamma_draw(seed, alpha, stream, counters(m).first, counters(m).second);
  if (s > 0 && std::isfinite(s)) {
    for (double& v : x) v /= s;
    return x;
  }
  // Far below alpha = 1, U^(1/alpha) underflows for every entry: the same draws, normalised in
  // log space, give the limit (mass on the largest entries) instead of 0/0.
  double top = -INFINITY;
  for (uint32_t m = 0; m < n; ++m) {
    const GammaFactors f = gamma_factors(seed, alpha, stream, counters(m).first, counters(m).second);
    x[m] = std::log(f.boosted) + std::log(f.u) / alpha;
    top = std::max(top, x[m]);
  }
  s = 0;
  for (double& v : x) s += v = std::exp(v - top);
  for (double& v : x) v /= s;
  return x;
}

ProblemView Problem::view() const {
  ProblemView v;
  v.N = N;
  v.T = T;
  v.mu_threshold = mu_table.threshold.data();
  v.mu_alias = mu_table.alias.data();
  v.P_threshold = P_threshold.data();
  v.P_alias = P_alias.data();
  v.q_ptr = q_ptr.data();
  v.q_pos = q_pos.data();
  v.q_threshold = q_threshold.data();
  v.q_alias = q_alias.data();
  return v;
}

std::vector<double> Problem::dense_Q_by_columns() const {
  std::vector<double> Qd(size_t(N) * T, 0.0);
  for (uint32_t k = 0; k < N; ++k)
    for (uint32_t s = q_ptr[k]; s < q_ptr[k + 1]; ++s) Qd[size_t(k) * T + q_pos[s]] = q_w[s];
  return Qd;
}

std::vector<double> stationary_distribution(const std::vector<double>& P, uint32_t N) {
  // Solve (P - I) mu = 0 with the last equation replaced by 1^T mu = 1 (partial pivoting).
  std::vector<double> M(size_t(N) * (N + 1), 0.0);
  auto at = [&](uint32_t r, uint32_t c) -> double& { return M[size_t(r) * (N + 1) + c]; };
  for (uint32_t i = 0; i + 1 < N; ++i)
    for (uint32_t j = 0; j < N; ++j) at(i, j) = P[size_t(i) * N + j] - (i == j ? 1.0 : 0.0);
  for (uint32_t j = 0; j < N; ++j) at(N - 1, j) = 1.0;
  at(N - 1, N) = 1.0;
  for (uint32_t c = 0; c < N; ++c) {
    uint32_t piv = c;
    for (uint32_t r = c + 1; r < N; ++r)
      if (std::abs(at(r, c)) > std::abs(at(piv, c))) piv = r;
    if (piv != c)
      for (uint32_t j = 0; j <= N; ++j) std::swap(at(c, j), at(piv, j));
    const double d = at(c, c);
    if (d == 0) throw ConfigError("problem.P: the stationary distribution is not unique");
    for (uint32_t r = 0; r < N; ++r) {
      if (r == c) continue;
      const double f = at(r, c) / d;
      if (f == 0) continue;
      for (uint32_t j = c; j <= N; ++j) at(r, j) -= f * at(c, j);
    }
  }
  std::vector<double> mu(N);
  double total = 0;
  for (uint32_t i = 0; i < N; ++i) {
    mu[i] = std::max(at(i, N) / at(i, i), 0.0);
    total += mu[i];
  }
  for (double& m : mu) m /= total;
  // A few power iterations polish the last digits (P mu = mu to rounding).
  std::vector<double> next(N);
  for (int it = 0; it < 3; ++it) {
    for (uint32_t i = 0; i < N; ++i) {
      double s = 0;
      for (uint32_t j = 0; j < N; ++j) s += P[size_t(i) * N + j] * mu[j];
      next[i] = s;
    }
    total = std::accumulate(next.begin(), next.end(), 0.0);
    for (uint32_t i = 0; i < N; ++i) mu[i] = next[i] / total;
  }
  return mu;
}

void validate_transition_matrix(const std::vector<double>& P, uint32_t N, const std::string& what) {
  for (uint32_t j = 0; j < N; ++j) {
    double s = 0;
    for (uint32_t i = 0; i < N; ++i) s += P[size_t(i) * N + j];
    if (std::abs(s - 1.0) > 1e-9)
      throw ConfigError(fmt::format(
          "{}: column {} sums to {:.12g}; every column must sum to 1 within 1e-9 (P[i][j] = Pr(next = i | current = j))",
          what, j, s));
  }
  // Irreducible: every state reaches 0 and is reached from 0 (edges j -> i where P[i][j] > 0).
  auto reach = [&](bool forward) {
    std::vector<char> seen(N, 0);
    std::vector<uint32_t> stack{0};
    seen[0] = 1;
    while (!stack.empty()) {
      const uint32_t u = stack.back();
      stack.pop_back();
      for (uint32_t v = 0; v < N; ++v) {
        const double w = forward ? P[size_t(v) * N + u] : P[size_t(u) * N + v];
        if (w > 0 && !seen[v]) { seen[v] = 1; stack.push_back(v); }
      }
    }
    return std::all_of(seen.begin(), seen.end(), [](char c) { return c != 0; });
  };
  if (!reach(true) || !reach(false))
    throw ConfigError(fmt::format("{}: the chain is not irreducible (some token cannot reach another)", what));
  // Aperiodic: the gcd of level[u] + 1 - level[v] over all edges u -> v of a BFS is 1.
  std::vector<int64_t> level(N, -1);
  std::queue<uint32_t> q;
  level[0] = 0;
  q.push(0);
  while (!q.empty()) {
    const uint32_t u = q.front();
    q.pop();
    for (uint32_t v = 0; v < N; ++v)
      if (P[size_t(v) * N + u] > 0 && level[v] < 0) { level[v] = level[u] + 1; q.push(v); }
  }
  int64_t g = 0;
  for (uint32_t u = 0; u < N; ++u)
    for (uint32_t v = 0; v < N; ++v)
      if (P[size_t(v) * N + u] > 0) g = std::gcd(g, std::abs(level[u] + 1 - level[v]));
  if (g != 1)
    throw ConfigError(fmt::format("{}: the chain is periodic (period {}); it must be aperiodic", what, g));
}

Problem problem_from_matrices(uint32_t N, uint32_t T, std::vector<double> P,
                              const std::vector<double>& Q_by_columns, uint32_t max_support,
                              const std::string& what_P, const std::string& what_Q) {
  validate_transition_matrix(P, N, what_P);
  Problem pb;
  pb.N = N;
  pb.T = T;
  pb.P = std::move(P);
  pb.mu = stationary_distribution(pb.P, N);
  pb.q_ptr.assign(N + 1, 0);
  for (uint32_t k = 0; k < N; ++k) {
    double s = 0;
    uint32_t nnz = 0;
    for (uint32_t t = 0; t < T; ++t) {
      const double w = Q_by_columns[size_t(k) * T + t];
      if (!std::isfinite(w) || w < 0)
        throw ConfigError(fmt::format("{}[{}][{}]: entries must be finite and non-negative", what_Q, t, k));
      if (w > 0) {
        pb.q_pos.push_back(t);
        pb.q_w.push_back(w);
        s += w;
        ++nnz;
      }
    }
    if (std::abs(s - 1.0) > 1e-9)
      throw ConfigError(fmt::format("{}: column {} sums to {:.12g}; every column must sum to 1 within 1e-9", what_Q, k, s));
    if (nnz > max_support)
      throw ConfigError(fmt::format("{}: column {} has {} non-zeros; problem.Q allows at most {}", what_Q, k, nnz, max_support));
    pb.q_ptr[k + 1] = static_cast<uint32_t>(pb.q_pos.size());
  }
  finish(pb);
  return pb;
}

std::shared_ptr<const Problem> make_problem(const Config& cfg) {
  const ProblemConfig& pc = cfg.problem;
  const uint32_t N = pc.N, T = pc.T;
  std::vector<double> P;
  std::string p_what = "problem.P";  // what a bad P is called in errors
  if (pc.P.is_object()) {
    const double alpha = pc.P.at("dirichlet").get<double>();
    p_what = fmt::format("problem.P (the Dirichlet({}) draw of problem.seed {}{})", alpha, pc.seed,
                         alpha < 0.05 ? "; alpha far below 1 draws nearly one-hot columns: use a larger alpha" : "");
    P.assign(size_t(N) * N, 0.0);
    for (uint32_t j = 0; j < N; ++j) {
      const std::vector<double> col =
          dirichlet_draw(pc.seed, alpha, kStreamPDirichlet, N, [j](uint32_t i) { return std::pair<uint32_t, uint32_t>(i, j); });
      for (uint32_t i = 0; i < N; ++i) P[size_t(i) * N + j] = col[i];
    }
    if (pc.P.contains("mix")) {
      // Correlated task: P = rho * P_mix + (1 - rho) * (the Dirichlet draw of this seed).
      std::vector<double> mix = load_matrix(pc.P["mix"], N, N, cfg.base_dir, "problem.P.mix");
      validate_transition_matrix(mix, N, "problem.P.mix");
      const double rho = pc.P["rho"].get<double>();
      for (size_t e = 0; e < P.size(); ++e) P[e] = rho * mix[e] + (1 - rho) * P[e];
    }
  } else {
    P = load_matrix(pc.P, N, N, cfg.base_dir, "problem.P");
  }

  if (!pc.Q_matrix.is_null()) {
    const std::vector<double> rows = load_matrix(pc.Q_matrix, T, N, cfg.base_dir, "problem.Q_matrix");
    std::vector<double> Qd(size_t(N) * T, 0.0);
    for (uint32_t t = 0; t < T; ++t)
      for (uint32_t k = 0; k < N; ++k) Qd[size_t(k) * T + t] = rows[size_t(t) * N + k];
    return std::make_shared<const Problem>(
        problem_from_matrices(N, T, std::move(P), Qd, pc.Q, p_what, "problem.Q_matrix"));
  }

  // Generated Q, built sparse (never T x N): Q distinct positions among the last W
  // (Floyd's algorithm), ascending, with uniform or Dirichlet weights.
  validate_transition_matrix(P, N, p_what);
  auto pb = std::make_shared<Problem>();
  pb->N = N;
  pb->T = T;
  pb->P = std::move(P);
  pb->mu = stationary_distribution(pb->P, N);
  const uint32_t W = pc.support == "recent" ? (pc.window ? pc.window : T) : T;
  const uint32_t lo = T - W;
  pb->q_ptr.assign(N + 1, 0);
  for (uint32_t k = 0; k < N; ++k) {
    std::set<uint32_t> chosen;
    uint32_t draw = 0;
    for (uint32_t j = W - pc.Q; j < W; ++j, ++draw) {
      const Philox4 w = philox(pc.seed, draw, k, 0, kStreamQSupport);
      const uint32_t r = static_cast<uint32_t>(uniform_below(w.v[0], w.v[1], uint64_t(j) + 1));
      if (!chosen.insert(r).second) chosen.insert(j);
    }
    std::vector<double> weights(pc.Q, 1.0 / pc.Q);
    if (pc.weights == "dirichlet")
      weights = dirichlet_draw(pc.seed, pc.weights_alpha, kStreamQWeights, pc.Q, [k](uint32_t m) { return std::pair<uint32_t, uint32_t>(m, k); });
    uint32_t m = 0;
    for (uint32_t pos : chosen) {
      pb->q_pos.push_back(lo + pos);
      pb->q_w.push_back(weights[m++]);
    }
    pb->q_ptr[k + 1] = static_cast<uint32_t>(pb->q_pos.size());
  }
  finish(*pb);
  return pb;
}

}  // namespace scb
