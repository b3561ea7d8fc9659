// Op table, part for train/: native ops that layer needs beyond the generic table.
// Keep each op one libtorch call (see common.h for the OP macro and Args).
#include "common.h"

#include <torch/csrc/autograd/profiler_legacy.h>

namespace cqseg {

void RegisterTrainOps(std::vector<OpDef>& ops) {
  static std::unique_ptr<torch::autograd::profiler::RecordProfile> prof;
  OP("profilerStart", prof = std::make_unique<torch::autograd::profiler::RecordProfile>(a.str(0)); return None{};);
  OP("profilerStop", prof.reset(); return None{};);
}

}  // namespace cqseg
