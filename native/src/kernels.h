// Hand-written CPU kernels shared between op files (see ops_kernels.cc).
#pragma once
#include <ATen/ATen.h>

#include <utility>
#include <vector>

namespace cqseg {

// Gradients of conv2d(pad(x, pads), w, stride, groups) for x and w (undefined where not
// asked); pads = [left, right, top, bottom]. Fast kernels for depthwise float32 cases.
std::pair<at::Tensor, at::Tensor> ConvBackward(const at::Tensor& g, const at::Tensor& x, const at::Tensor& w, const std::vector<int64_t>& stride,
                                               const std::vector<int64_t>& pads, int64_t groups, bool needX, bool needW);

}  // namespace cqseg
