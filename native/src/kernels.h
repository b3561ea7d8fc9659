// Hand-written CPU kernels shared between op files (see ops_kernels.cc).
#pragma once
#include <ATen/ATen.h>

#include <utility>
#include <vector>

// x86-64: AVX2 intrinsics for the hand-vectorized paths (taken when HasAvx2()).
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define CQSEG_X86 1
#endif

// A plain loop over contiguous floats built twice, for AVX2 and for any x86-64, the
// clone picked when the library loads (GCC); plain elsewhere.
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(_M_X64))
#define CQSEG_VEC __attribute__((target_clones("avx2", "default"), optimize("O3")))
#else
#define CQSEG_VEC
#endif

namespace cqseg {

// Whether the CPU runs AVX2 and FMA (the hand-vectorized kernels' paths).
bool HasAvx2();

// Gradients of conv2d(pad(x, pads), w, stride, groups) for x and w (undefined where not
// asked); pads = [left, right, top, bottom]. Fast kernels for depthwise float32 cases.
std::pair<at::Tensor, at::Tensor> ConvBackward(const at::Tensor& g, const at::Tensor& x, const at::Tensor& w, const std::vector<int64_t>& stride,
                                               const std::vector<int64_t>& pads, int64_t groups, bool needX, bool needW);

// 3x3 convolution, stride 1, padding 1, groups 1, float32 by Winograd F(2x2, 3x3)
// (winograd.cc): the kernels' transform (WinogradWeight: [16, Co, Ci]), the convolution
// with transformed kernels, and its gradients for the input and the kernels.
at::Tensor WinogradWeight(const at::Tensor& w);
at::Tensor WinogradConv(const at::Tensor& x, const at::Tensor& u);
at::Tensor WinogradInputGrad(const at::Tensor& g, const at::Tensor& w);
at::Tensor WinogradWeightGrad(const at::Tensor& g, const at::Tensor& x);

}  // namespace cqseg
