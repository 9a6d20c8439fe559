// scb._scb.sweep: `scb sweep` from Python, the same options, validation and directory. The
// tables it writes are read back by the Python package (scb.load_sweep), as for the CLI's.
// Ctrl-C stops every pack within a step (SweepOptions::poll) and leaves the directory resumable.
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "scb/sweep/sweep.hpp"

namespace scb::python {

namespace {

py::dict sweep_of(const std::string& sweep_file, const std::string& out, bool resume, const std::string& shard,
                  const std::string& device, int threads, const py::object& progress) {
  SweepOptions o;
  o.sweep_file = sweep_file;
  o.out = out;
  o.resume = resume;
  if (!shard.empty()) {
    o.shard = parse_shard(shard, "shard");
    o.shard_given = true;
  }
  o.device = parse_device(device);
  o.threads = threads;
  o.quiet = true;  // Python draws the progress (a tqdm bar from `progress`, None for silence)
  PythonPoll poll{progress, true};
  o.poll = [&poll](const TrainProgress& p) { poll(p); };
  o.stopping = [&poll] { return poll.stopping(); };  // runs with train.checkpoint_every save one first
  SweepSummary s;
  try {
    py::gil_scoped_release release;
    s = run_sweep(o);
  } catch (const Interrupted&) {
    poll.raise_if_interrupted();
  }
  poll.raise_if_interrupted();  // a Ctrl-C seen at the very end, when no step was left to stop
  py::dict d;
  d["total"] = s.total, d["skipped"] = s.skipped, d["ok"] = s.ok, d["diverged"] = s.diverged;
  d["packs"] = s.packs, d["wall_seconds"] = s.wall_seconds, d["sample_tokens"] = s.sample_tokens;
  return d;
}

}  // namespace

void register_sweep(py::module_& m) {
  m.def("sweep", &sweep_of, py::arg("sweep_file"), py::arg("out"), py::arg("resume"), py::arg("shard"),
        py::arg("device"), py::arg("threads"), py::arg("progress"));
}

}  // namespace scb::python
