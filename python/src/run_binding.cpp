// scb._scb.train and the trained run it returns. The run keeps the engine's own buffers (V, A,
// the problem's P, mu and a dense Q made once) and hands numpy views of them to Python, so no
// parameter is copied after training; a view keeps its run alive.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>

#include "bindings.hpp"
#include "scb/core/output.hpp"
#include "scb/sweep/train_run.hpp"

namespace scb::python {

namespace {

struct TrainedRun {
  std::unique_ptr<SingleRun> run;
  std::vector<float> attention;       // softmax: softmax(w) by columns (linear: A itself is it)
  std::vector<double> Q_by_columns;   // the problem's Q, dense, by columns
};

py::dict curve_columns(const std::vector<Metrics>& curve) {
  const size_t n = curve.size();
  py::array_t<int64_t> step(n), samples(n), nnz(n);
  py::array_t<double> loss(n), excess(n), dV(n), dA(n), dVn(n), dAn(n);
  for (size_t i = 0; i < n; ++i) {
    const Metrics& m = curve[i];
    step.mutable_at(i) = m.step, samples.mutable_at(i) = m.samples, nnz.mutable_at(i) = m.nnz_A;
    loss.mutable_at(i) = m.loss, excess.mutable_at(i) = m.excess_loss;
    dV.mutable_at(i) = m.dist_V, dA.mutable_at(i) = m.dist_A, dVn.mutable_at(i) = m.dist_V_norm, dAn.mutable_at(i) = m.dist_A_norm;
  }
  py::dict d;  // the columns of curves.csv, in its order
  d["step"] = step, d["samples"] = samples, d["loss"] = loss, d["excess_loss"] = excess, d["dist_V"] = dV;
  d["dist_A"] = dA, d["dist_V_norm"] = dVn, d["dist_A_norm"] = dAn, d["nnz_A"] = nnz;
  return d;
}

std::unique_ptr<TrainedRun> train(const std::string& config_json, const std::string& base_dir,
                                  const std::vector<std::string>& overrides, const std::string& override_base,
                                  const std::string& device, int threads, const py::object& progress) {
  const Config cfg = resolve_run_config(parse_json_text(config_json, "config"), base_dir, overrides, override_base);
  auto out = std::make_unique<TrainedRun>();
  out->run = prepare_single_run(cfg, parse_device(device), threads);
  PythonPoll poll(progress);
  try {
    py::gil_scoped_release release;
    train_single_run(*out->run, [&poll](const TrainProgress& p) { poll(p); });
  } catch (const Interrupted&) {
    poll.raise_if_interrupted();
  }
  const RunPack& pack = out->run->pack;
  if (pack.attention == Attention::softmax) out->attention = attention_matrix(pack, 0);
  out->Q_by_columns = pack.problem(0).dense_Q_by_columns();
  return out;
}

void save(const TrainedRun& t, const std::string& dir) {
  prepare_atomic_output_dir(dir);
  write_run_outputs_atomically(dir, t.run->config, t.run->pack, 0, t.run->result, t.run->timing, t.run->inputs);
}

}  // namespace

void register_run(py::module_& m) {
  py::class_<TrainedRun>(m, "TrainedRun")
      .def_property_readonly("curves", [](const TrainedRun& t) { return curve_columns(t.run->result.curve); })
      .def_property_readonly("summary_json", [](const TrainedRun& t) {
        return summary_json(t.run->pack, 0, t.run->result, t.run->timing).dump();
      })
      .def_property_readonly("config_json", [](const TrainedRun& t) { return t.run->config.resolved.dump(); })
      .def_property_readonly("V", [](py::object self) {
        const RunPack& p = self.cast<const TrainedRun&>().run->pack;
        return view(self, p.V_of(0), p.N, p.N, p.N, 1);
      })
      .def_property_readonly("A", [](py::object self) {  // T x N, as A.npy: the attention
        const TrainedRun& t = self.cast<const TrainedRun&>();
        const RunPack& p = t.run->pack;
        return view(self, t.attention.empty() ? p.A_of(0) : t.attention.data(), p.T, p.N, 1, p.T);
      })
      .def_property_readonly("W", [](py::object self) -> py::object {  // softmax logits, T x N
        const RunPack& p = self.cast<const TrainedRun&>().run->pack;
        if (p.attention != Attention::softmax) return py::none();
        return view(self, p.A_of(0), p.T, p.N, 1, p.T);
      })
      .def_property_readonly("P", [](py::object self) {
        const Problem& pb = self.cast<const TrainedRun&>().run->pack.problem(0);
        return view(self, pb.P.data(), pb.N, pb.N, pb.N, 1);
      })
      .def_property_readonly("Q", [](py::object self) {
        const TrainedRun& t = self.cast<const TrainedRun&>();
        const RunPack& p = t.run->pack;
        return view(self, t.Q_by_columns.data(), p.T, p.N, 1, p.T);
      })
      .def_property_readonly("mu", [](py::object self) {
        const Problem& pb = self.cast<const TrainedRun&>().run->pack.problem(0);
        return vector_view(self, pb.mu.data(), pb.N);
      })
      .def("save", &save, py::arg("dir"));
  m.def("train", &train, py::arg("config_json"), py::arg("base_dir"), py::arg("overrides"), py::arg("override_base"),
        py::arg("device"), py::arg("threads"), py::arg("progress"));
}

}  // namespace scb::python
