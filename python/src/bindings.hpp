#pragma once
// The pieces of the `scb._scb` extension: each file registers one concept on the module. The
// Python package (python/scb/) wraps them in the documented API; nothing here is public.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <optional>

#include "scb/core/trainer.hpp"

namespace scb::python {

namespace py = pybind11;

// A (rows x cols) numpy view of engine memory whose element (i, j) sits at i*row_step + j*col_step;
// `owner` (the Python object holding that memory) lives as long as the view.
template <typename T>
py::array_t<T> view(const py::object& owner, const T* data, size_t rows, size_t cols, size_t row_step, size_t col_step) {
  return py::array_t<T>({rows, cols}, {row_step * sizeof(T), col_step * sizeof(T)}, data, owner);
}
template <typename T>
py::array_t<T> vector_view(const py::object& owner, const T* data, size_t n) {
  return py::array_t<T>({n}, {sizeof(T)}, data, owner);
}

void register_run(py::module_& m);
void register_problem(py::module_& m);
void register_sweep(py::module_& m);

// Thrown through the engine (which runs without the GIL) when Python asked to stop: Ctrl-C, or
// an exception in the progress callback. The Python error itself waits in PythonPoll.
struct Interrupted : std::exception {
  const char* what() const noexcept override { return "interrupted from Python"; }
};

// Called by the engine after every step: at most ten times a second it takes the GIL, reports
// progress to `callback` (None: nothing) and checks for signals, so Ctrl-C stops a run within
// about 0.1 s and KeyboardInterrupt reaches the caller.
class PythonPoll {
 public:
  // defer_stop: on Ctrl-C (or an error in the callback) let one more step run, so that the
  // engine's stopping() check saves checkpoints first (SweepOptions::stopping); the next call stops.
  explicit PythonPoll(py::object callback, bool defer_stop = false)
      : callback_(std::move(callback)), defer_stop_(defer_stop) {}
  void operator()(const TrainProgress& progress);
  // Whether a stop has been seen (any thread, no GIL needed).
  bool stopping() const { return stop_.load(); }
  // With the GIL held, after the engine returned or threw Interrupted: raise the saved error.
  void raise_if_interrupted();

 private:
  py::object callback_;
  bool defer_stop_;
  std::atomic<bool> stop_{false};
  std::optional<py::error_already_set> error_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace scb::python
