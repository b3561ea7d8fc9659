// How a fused node runs its convolution and its gradients: the algorithm the caller
// chose (src/tensor/conv_kernel.ts decides; this file only carries it out).
#include "../common.h"
#include "kernels.h"

#include <ATen/Parallel.h>

namespace cqseg {

// How a fused node's convolution runs: libtorch's choice; im2col + GEMM (thnn_conv2d;
// groups 1, symmetric pads); or libtorch's forward with Winograd F(2x2, 3x3) gradients
// (winograd.cc; 3x3, stride 1, padding 1, groups 1). An algorithm that does not apply to
// the convolution's shape falls back to libtorch's.
Algo AlgoOf(const std::string& name, const char* op) {
  if (name == "auto") return kAuto;
  if (name == "gemm") return kGemm;
  if (name == "winograd") return kWinograd;
  TORCH_CHECK(false, op, ": algorithm must be 'auto', 'gemm' or 'winograd', got '", name, "'");
}

// Winograd's gradients only where libtorch runs one thread: with more, its OpenMP workers
// and OpenBLAS's threads contend and libtorch's own gradients are faster (README: Training, "Speed and memory").
bool WinogradApplies(const at::Tensor& cw, const std::vector<int64_t>& stride, const std::vector<int64_t>& pads, int64_t groups) {
  return at::get_num_threads() == 1 && groups == 1 && cw.size(2) == 3 && cw.size(3) == 3 && stride[0] == 1 && stride[1] == 1 && pads[0] == 1 && pads[1] == 1 && pads[2] == 1 &&
         pads[3] == 1 && cw.scalar_type() == at::kFloat;
}

// conv2d(pad(y, pads), cw, cb, stride, groups) (pads = [left, right, top, bottom]) and its
// gradients for y and cw
at::Tensor ConvForward(const at::Tensor& y, const at::Tensor& cw, const c10::optional<at::Tensor>& cb, const std::vector<int64_t>& stride,
                       const std::vector<int64_t>& pads, int64_t groups, Algo algo) {
  const bool sym = pads[0] == pads[1] && pads[2] == pads[3];
  const at::Tensor yp = sym ? y : at::constant_pad_nd(y, {pads[0], pads[1], pads[2], pads[3]});
  const std::vector<int64_t> p = sym ? std::vector<int64_t>{pads[2], pads[0]} : std::vector<int64_t>{0, 0};
  if (algo == kGemm && groups == 1) return at::thnn_conv2d(yp, cw, {cw.size(2), cw.size(3)}, cb, stride, p);
  return at::conv2d(yp, cw, cb, stride, p, {1, 1}, groups);
}

std::pair<at::Tensor, at::Tensor> ConvGrads(const at::Tensor& g, const at::Tensor& y, const at::Tensor& cw, const std::vector<int64_t>& stride,
                                            const std::vector<int64_t>& pads, int64_t groups, Algo algo, bool needY, bool needW) {
  if (algo == kGemm && groups == 1 && pads[0] == pads[1] && pads[2] == pads[3]) {
    auto r = at::_slow_conv2d_backward(g, y, cw, {cw.size(2), cw.size(3)}, stride, {pads[2], pads[0]}, {needY, needW, false});
    return {std::get<0>(r), std::get<1>(r)};
  }
  if (algo == kWinograd && WinogradApplies(cw, stride, pads, groups)) {
    return {needY ? WinogradInputGrad(g, cw) : at::Tensor(), needW ? WinogradWeightGrad(g, y) : at::Tensor()};
  }
  return ConvBackward(g, y, cw, stride, pads, groups, needY, needW);
}



}  // namespace cqseg
