// Which CPU paths the hand-vectorized kernels take.
#include "../common.h"
#include "kernels.h"

#include <cstdlib>
#include <string>

namespace cqseg {

bool HasAvx2() {
#ifdef CQSEG_X86
  // CQSEG_CPU=plain takes the plain C++ paths on any CPU (tests of a machine without AVX2)
  static const bool yes = [] {
    const char* v = std::getenv("CQSEG_CPU");
    if (v != nullptr && std::string(v) == "plain") return false;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return yes;
#else
  return false;
#endif
}

void RegisterCpuOps(Ops& ops) {
    // whether the hand-vectorized AVX2 paths run (false without AVX2+FMA or with CQSEG_CPU=plain)
  OP("cpuHasAvx2", return HasAvx2(););
}

}  // namespace cqseg
