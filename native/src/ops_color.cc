// Op table, part for color/: native ops that layer needs beyond the generic table.
// Keep each op one libtorch call (see common.h for the OP macro and Args).
#include "common.h"

namespace cqseg {

void RegisterColorOps(std::vector<OpDef>& ops) {
  // integer bin of uint8 values: x >> k (histograms)
  OP("bitwiseRightShift", return at::bitwise_right_shift(a.t(0), a.scalar(1)););
}

}  // namespace cqseg
