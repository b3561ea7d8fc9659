// Op table, part for train/: native ops that layer needs beyond the generic table.
// Keep each op one libtorch call (see common.h for the OP macro and Args).
#include "common.h"

namespace cqseg {

void RegisterTrainOps(std::vector<OpDef>& ops) {
  (void)ops;
}

}  // namespace cqseg
