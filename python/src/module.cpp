// `scb._scb`: the engine for Python. Bad input raises scb.ConfigError (a ValueError) carrying
// the CLI's one-line message; training releases the GIL and polls for Ctrl-C (PythonPoll).
#include <pybind11/pybind11.h>

#include "bindings.hpp"
#include "scb/core/config.hpp"

namespace scb::python {

void PythonPoll::operator()(const TrainProgress& p) {
  if (stop_) throw Interrupted{};  // a stop seen at the call before: the step since saved the checkpoints
  const auto now = std::chrono::steady_clock::now();
  const bool last = p.steps_done >= p.steps_total;
  if (!last && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  py::gil_scoped_acquire gil;
  try {
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (!callback_.is_none()) callback_(p.steps_done, p.steps_total, p.sample_tokens, p.elapsed_seconds, p.last_loss);
  } catch (py::error_already_set& e) {
    error_.emplace(std::move(e));
    stop_ = true;
    if (!defer_stop_) throw Interrupted{};
  }
}

void PythonPoll::raise_if_interrupted() {
  if (!error_) return;
  py::error_already_set e = std::move(*error_);
  error_.reset();
  throw e;
}

}  // namespace scb::python

namespace py = pybind11;

PYBIND11_MODULE(_scb, m) {
  m.doc() = "scb-engine: the C++ engine behind the scb package (use scb, not scb._scb)";
  static py::exception<scb::ConfigError> config_error(m, "ConfigError", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const scb::ConfigError& e) {
      PyErr_SetString(config_error.ptr(), e.what());
    }
  });
  scb::python::register_run(m);
  scb::python::register_problem(m);
  scb::python::register_sweep(m);
}
