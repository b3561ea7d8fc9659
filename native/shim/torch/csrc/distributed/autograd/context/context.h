// Stand-in for a header that Debian's libtorch-dev 1.13 leaves out although
// c10d/reducer.hpp includes it (the distributed-autograd context). reducer.hpp needs two
// names from it: ContextPtr (held as a std::shared_ptr: its layout does not depend on the
// pointee) and DistAutogradContext::GradCallback (a std::function type it checks against
// its own). cqseg never creates or reads such a context (no RPC, no distributed autograd).
// scripts/libtorch.js adds this folder to the include path only when the real header is
// missing; a full libtorch (PyTorch's) uses its own.
#pragma once
#include <ATen/ATen.h>
#include <functional>
#include <memory>

namespace torch {
namespace distributed {
namespace autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor&)>;
};
using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace autograd
}  // namespace distributed
}  // namespace torch
