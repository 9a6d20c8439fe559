// scb._scb.make_problem, population_loss and metrics: the engine's problem generator and its
// exact population loss on arrays a user made, so a notebook's own code can use the same
// numbers the engine reports. Arrays come in the layout of the .npy files (P: N x N with
// P[i, j] = Pr(i | j), Q and A: T x N, V: N x N).
#include <pybind11/numpy.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "bindings.hpp"
#include "scb/core/population.hpp"
#include "scb/core/problem.hpp"

namespace scb::python {

namespace {

using Matrix = py::array_t<double, py::array::c_style | py::array::forcecast>;

struct ProblemHandle {
  std::shared_ptr<const Problem> problem;
  std::vector<double> Q_by_columns;
};

size_t dim(const Matrix& a, int axis) { return static_cast<size_t>(a.shape(axis)); }

void require_shape(const Matrix& a, size_t rows, size_t cols, const char* name) {
  if (a.ndim() != 2 || dim(a, 0) != rows || dim(a, 1) != cols)
    throw ConfigError(fmt::format("{}: expected shape ({}, {})", name, rows, cols));
}

// T x N (rows are positions) to the engine's by-columns layout A[k*T + t].
std::vector<double> by_columns(const Matrix& a) {
  const size_t T = dim(a, 0), N = dim(a, 1);
  std::vector<double> out(T * N);
  for (size_t t = 0; t < T; ++t)
    for (size_t k = 0; k < N; ++k) out[k * T + t] = a.at(t, k);
  return out;
}

// A problem from user arrays, validated as problem.P / problem.Q_matrix are; mu, when given,
// must be P's stationary distribution (the loss is defined for it).
Problem problem_of(const Matrix& P, const Matrix& Q, const py::object& mu) {
  if (P.ndim() != 2 || dim(P, 0) != dim(P, 1)) throw ConfigError("P: expected a square N x N array");
  const size_t N = dim(P, 0);
  if (Q.ndim() != 2 || dim(Q, 1) != N) throw ConfigError(fmt::format("Q: expected shape (T, {})", N));
  const std::vector<double> Qc = by_columns(Q);
  Problem pb = problem_from_matrices(uint32_t(N), uint32_t(dim(Q, 0)), std::vector<double>(P.data(), P.data() + N * N),
                                     Qc, uint32_t(dim(Q, 0)), "P", "Q");
  if (!mu.is_none()) {
    const Matrix m = mu.cast<Matrix>();
    if (m.ndim() != 1 || size_t(m.shape(0)) != N) throw ConfigError(fmt::format("mu: expected shape ({},)", N));
    for (size_t i = 0; i < N; ++i)
      if (!(std::fabs(m.at(i) - pb.mu[i]) <= 1e-9))
        throw ConfigError(fmt::format("mu: entry {} is {:.12g}, but the stationary distribution of P has {:.12g}", i, m.at(i), pb.mu[i]));
  }
  return pb;
}

double population_loss_of(const Matrix& P, const Matrix& Q, const py::object& mu, const Matrix& V, const Matrix& A) {
  const Problem pb = problem_of(P, Q, mu);
  require_shape(V, pb.N, pb.N, "V");
  require_shape(A, pb.T, pb.N, "A");
  return population_loss(pb, V.data(), by_columns(A).data());
}

py::dict metrics_of(const Matrix& P, const Matrix& Q, const py::object& mu, const Matrix& V, const Matrix& A) {
  const Problem pb = problem_of(P, Q, mu);
  require_shape(V, pb.N, pb.N, "V");
  require_shape(A, pb.T, pb.N, "A");
  const Metrics m = compute_metrics(pb, V.data(), by_columns(A).data());
  py::dict d;
  d["loss"] = m.loss, d["excess_loss"] = m.excess_loss, d["dist_V"] = m.dist_V, d["dist_A"] = m.dist_A;
  d["dist_V_norm"] = m.dist_V_norm, d["dist_A_norm"] = m.dist_A_norm, d["nnz_A"] = m.nnz_A;
  return d;
}

std::unique_ptr<ProblemHandle> make_problem_of(const std::string& config_json, const std::string& base_dir) {
  const Config cfg = resolve_config(parse_json_text(config_json, "config"), base_dir);
  auto h = std::make_unique<ProblemHandle>();
  h->problem = make_problem(cfg);
  h->Q_by_columns = h->problem->dense_Q_by_columns();
  return h;
}

}  // namespace

void register_problem(py::module_& m) {
  py::class_<ProblemHandle>(m, "ProblemHandle")
      .def_property_readonly("P", [](py::object self) {
        const Problem& pb = *self.cast<const ProblemHandle&>().problem;
        return view(self, pb.P.data(), pb.N, pb.N, pb.N, 1);
      })
      .def_property_readonly("Q", [](py::object self) {
        const ProblemHandle& h = self.cast<const ProblemHandle&>();
        return view(self, h.Q_by_columns.data(), h.problem->T, h.problem->N, 1, h.problem->T);
      })
      .def_property_readonly("mu", [](py::object self) {
        const Problem& pb = *self.cast<const ProblemHandle&>().problem;
        return vector_view(self, pb.mu.data(), pb.N);
      })
      .def_property_readonly("bayes_loss", [](const ProblemHandle& h) { return h.problem->bayes_loss; });
  m.def("make_problem", &make_problem_of, py::arg("config_json"), py::arg("base_dir"));
  m.def("population_loss", &population_loss_of, py::arg("P"), py::arg("Q"), py::arg("mu"), py::arg("V"), py::arg("A"));
  m.def("metrics", &metrics_of, py::arg("P"), py::arg("Q"), py::arg("mu"), py::arg("V"), py::arg("A"));
}

}  // namespace scb::python
