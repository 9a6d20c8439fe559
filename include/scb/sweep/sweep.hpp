#pragma once
// The sweep layer in one include, for callers that use much of it (the tests). A sweep file
// expands into runs (grid x zip x replicates), each named by a stable run_id; runs of one shape
// train together in RunPacks sized by a memory planner; every finished run is appended to
// runs.csv / curves.csv as whole lines with one write + fsync, so an interrupted sweep (SIGKILL
// included) resumes without losing or duplicating a row. Shards of a sweep can run separately
// and be merged afterwards. Each concept has its own header, listed in the order they build on
// one another.
#include "scb/sweep/run_id.hpp"
#include "scb/sweep/expand.hpp"
#include "scb/sweep/validate.hpp"
#include "scb/sweep/shard.hpp"
#include "scb/sweep/plan.hpp"
#include "scb/sweep/tables.hpp"
#include "scb/sweep/save_params.hpp"
#include "scb/sweep/sweep_dir.hpp"
#include "scb/sweep/train_packs.hpp"
#include "scb/sweep/runner.hpp"
#include "scb/sweep/merge.hpp"
