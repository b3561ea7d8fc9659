// The kernels of native/src/kernels/: what their files share, and the functions that
// register their ops. Each file holds one kernel (or one fused autograd node), its
// argument checks and its op lines; src/tensor/ calls them through typed wrappers.
#pragma once
#include "../common.h"

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

// How a fused node's convolution and its gradients run (conv.cc): 'auto' (libtorch's,
// with depthwise.cc's gradients for depthwise convolutions), 'gemm' (im2col + GEMM) or
// 'winograd' (libtorch's forward, Winograd gradients); src/tensor/conv_kernel.ts chooses.
enum Algo : int64_t { kAuto = 0, kGemm = 1, kWinograd = 2 };
Algo AlgoOf(const std::string& name, const char* op);
// conv2d(pad(y, pads), cw, cb, stride, groups), pads = [left, right, top, bottom]
at::Tensor ConvForward(const at::Tensor& y, const at::Tensor& cw, const c10::optional<at::Tensor>& cb, const std::vector<int64_t>& stride,
                       const std::vector<int64_t>& pads, int64_t groups, Algo algo);
// its gradients for y and cw (undefined where not asked)
std::pair<at::Tensor, at::Tensor> ConvGrads(const at::Tensor& g, const at::Tensor& y, const at::Tensor& cw, const std::vector<int64_t>& stride,
                                            const std::vector<int64_t>& pads, int64_t groups, Algo algo, bool needY, bool needW);

// An optional tensor argument of a fused node (undefined -> none).
inline c10::optional<at::Tensor> Opt(const at::Tensor& t) { return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt; }

// 3x3 convolution, stride 1, padding 1, groups 1, float32 by Winograd F(2x2, 3x3)
// (winograd.cc): the kernels' transform (WinogradWeight: [16, Co, Ci]), the convolution
// with transformed kernels, and its gradients for the input and the kernels.
at::Tensor WinogradWeight(const at::Tensor& w);
at::Tensor WinogradConv(const at::Tensor& x, const at::Tensor& u);
at::Tensor WinogradInputGrad(const at::Tensor& g, const at::Tensor& w);
at::Tensor WinogradWeightGrad(const at::Tensor& g, const at::Tensor& x);

// Each kernel file's op lines (OP for the op table, TEST_OP for the tests' table).
void RegisterBatchNormActOps(Ops& ops);
void RegisterUpCatConvOps(Ops& ops);
void RegisterScaledConvOps(Ops& ops);
void RegisterWinogradOps(Ops& ops);
void RegisterDepthwiseOps(Ops& ops);
void RegisterHistogramOps(Ops& ops);
void RegisterInt8DotOps(Ops& ops);
void RegisterCpuOps(Ops& ops);

}  // namespace cqseg
