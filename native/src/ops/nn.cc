// Op table, part 2: nn functional ops, losses, linear algebra, autograd,
// optimizer steps (PyTorch's formulas, looped over parameter lists in C++),
// threads and devices.
#include "../common.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <chrono>
#include <cmath>

namespace cqseg {

namespace {

// torch.optim.Adam / AdamW (single-tensor implementation of PyTorch 1.13/2.x):
//   Adam:  g += wd * p            AdamW: p *= 1 - lr * wd
//   m = b1 m + (1-b1) g ; v = b2 v + (1-b2) g^2
//   p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
// args: params, expAvg, expAvgSq, maxExpAvgSq (or []), steps (per param, already
// incremented), lr, beta1, beta2, eps, weightDecay, decoupled, amsgrad
Result AdamStep(Args& a) {
  auto params = a.tensors(0), m = a.tensors(1), v = a.tensors(2), vmax = a.tensors(3);
  auto steps = a.ints(4);
  double lr = a.f64(5), b1 = a.f64(6), b2 = a.f64(7), eps = a.f64(8), wd = a.f64(9);
  bool decoupled = a.b(10), amsgrad = a.b(11);
  if (m.size() != params.size() || v.size() != params.size() || steps.size() != params.size() ||
      (amsgrad && vmax.size() != params.size())) {
    throw std::invalid_argument("adamStep: state lists differ in length from the parameter list");
  }
  at::NoGradGuard guard;
  for (size_t k = 0; k < params.size(); k++) {
    at::Tensor& p = params[k];
    if (!p.grad().defined()) continue;
    at::Tensor g = p.grad();
    if (wd != 0) {
      if (decoupled) p.mul_(1 - lr * wd);
      else g = g.add(p, wd);
    }
    m[k].mul_(b1).add_(g, 1 - b1);
    v[k].mul_(b2).addcmul_(g, g, 1 - b2);
    double bc1 = 1 - std::pow(b1, static_cast<double>(steps[k]));
    double bc2 = 1 - std::pow(b2, static_cast<double>(steps[k]));
    at::Tensor denom;
    if (amsgrad) {
      at::maximum_out(vmax[k], vmax[k], v[k]);
      denom = (vmax[k].sqrt() / std::sqrt(bc2)).add_(eps);
    } else {
      denom = (v[k].sqrt() / std::sqrt(bc2)).add_(eps);
    }
    p.addcdiv_(m[k], denom, -lr / bc1);
  }
  return None{};
}

// torch.optim.SGD: d = g + wd p; buf = d (first step) or momentum buf + (1-dampening) d;
// d = nesterov ? d + momentum buf : buf; p -= lr d.
// args: params, momentumBuffers (or []), initialized flags (0/1 per param), lr, momentum,
// dampening, weightDecay, nesterov
Result SgdStep(Args& a) {
  auto params = a.tensors(0), bufs = a.tensors(1);
  auto init = a.ints(2);
  double lr = a.f64(3), momentum = a.f64(4), dampening = a.f64(5), wd = a.f64(6);
  bool nesterov = a.b(7);
  if (momentum != 0 && (bufs.size() != params.size() || init.size() != params.size())) {
    throw std::invalid_argument("sgdStep: momentum buffers differ in length from the parameter list");
  }
  at::NoGradGuard guard;
  for (size_t k = 0; k < params.size(); k++) {
    at::Tensor& p = params[k];
    if (!p.grad().defined()) continue;
    at::Tensor d = p.grad();
    if (wd != 0) d = d.add(p, wd);
    if (momentum != 0) {
      if (!init[k]) bufs[k].copy_(d);
      else bufs[k].mul_(momentum).add_(d, 1 - dampening);
      d = nesterov ? d.add(bufs[k], momentum) : bufs[k];
    }
    p.add_(d, -lr);
  }
  return None{};
}

int64_t Reduction(Args& a, size_t i) {
  if (a.none(i)) return at::Reduction::Mean;
  std::string r = a.str(i);
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none") return at::Reduction::None;
  a.fail(i, "reduction must be 'mean', 'sum' or 'none', got '" + r + "'");
}

}  // namespace

void RegisterNnOps(Ops& ops) {
  // ---------------------------------------------------------- convolutions
  // (x, w, b?, stride[2], padding[2], dilation[2], groups)
  OP("conv2d", return at::conv2d(a.t(0), a.t(1), a.optT(2), a.ints(3), a.ints(4), a.ints(5), a.i64(6)););
  // (x, w, b?, stride[2], padding[2]): the im2col + GEMM algorithm (no groups or dilation)
  OP("thnnConv2d", { auto w = a.t(1); return at::thnn_conv2d(a.t(0), w, {w.size(2), w.size(3)}, a.optT(2), a.ints(3), a.ints(4)); });
  // (x, w, b?, stride[2], padding 'same'|'valid', dilation[2], groups)
  OP("conv2dPadMode", return at::conv2d(a.t(0), a.t(1), a.optT(2), a.ints(3), a.str(4), a.ints(5), a.i64(6)););
  // (x, w, b?, stride, padding, outputPadding, groups, dilation)
  OP("convTranspose2d", return at::conv_transpose2d(a.t(0), a.t(1), a.optT(2), a.ints(3), a.ints(4), a.ints(5),
                                                    a.i64(6), a.ints(7)););

  // --------------------------------------------------------- normalization
  // (x, weight?, bias?, runningMean?, runningVar?, training, momentum, eps)
  OP("batchNorm", return at::batch_norm(a.t(0), a.optT(1), a.optT(2), a.optT(3), a.optT(4), a.b(5), a.f64(6), a.f64(7),
                                        at::globalContext().userEnabledCuDNN()););
  OP("layerNorm", return at::layer_norm(a.t(0), a.ints(1), a.optT(2), a.optT(3), a.f64(4), true););
  OP("groupNorm", return at::group_norm(a.t(0), a.i64(1), a.optT(2), a.optT(3), a.f64(4), true););

  // -------------------------------------------------------------- pooling
  // (x, kernel, stride, padding, dilation, ceilMode)
  OP("maxPool2d", return at::max_pool2d(a.t(0), a.ints(1), a.ints(2), a.ints(3), a.ints(4), a.b(5)););
  // (x, kernel, stride, padding, ceilMode, countIncludePad, divisorOverride?)
  OP("avgPool2d", return at::avg_pool2d(a.t(0), a.ints(1), a.ints(2), a.ints(3), a.b(4), a.b(5), a.optI64(6)););
  OP("adaptiveAvgPool2d", return at::adaptive_avg_pool2d(a.t(0), a.ints(1)););
  OP("adaptiveMaxPool2d", return std::get<0>(at::adaptive_max_pool2d(a.t(0), a.ints(1))););

  // ------------------------------------------------------- resampling
  // (x, outSize[2], scaleH?, scaleW?)
  OP("upsampleNearest2d", return at::upsample_nearest2d(a.t(0), a.ints(1), a.optF64(2), a.optF64(3)););
  OP("upsampleNearestExact2d", return at::_upsample_nearest_exact2d(a.t(0), a.ints(1), a.optF64(2), a.optF64(3)););
  // (x, outSize[2], alignCorners, scaleH?, scaleW?)
  OP("upsampleBilinear2d", return at::upsample_bilinear2d(a.t(0), a.ints(1), a.b(2), a.optF64(3), a.optF64(4)););
  OP("upsampleBicubic2d", return at::upsample_bicubic2d(a.t(0), a.ints(1), a.b(2), a.optF64(3), a.optF64(4)););
  // (x, grid, mode 0 bilinear|1 nearest|2 bicubic, padding 0 zeros|1 border|2 reflection, alignCorners)
  OP("gridSample", return at::grid_sampler(a.t(0), a.t(1), a.i64(2), a.i64(3), a.b(4)););
  // (theta (N,2,3), size [N,C,H,W], alignCorners)
  OP("affineGrid", return at::affine_grid_generator(a.t(0), a.ints(1), a.b(2)););

  // ------------------------------------------------------ activations etc.
  OP("softmax", return at::softmax(a.t(0), a.i64(1), a.optDtype(2)););
  OP("logSoftmax", return at::log_softmax(a.t(0), a.i64(1), a.optDtype(2)););
  OP("dropout", return at::dropout(a.t(0), a.f64(1), a.b(2)););
  OP("oneHot", return at::one_hot(a.t(0), a.i64(1)););

  // --------------------------------------------------------------- losses
  // (logits, target, weight?, reduction, ignoreIndex, labelSmoothing)
  OP("crossEntropy", return at::cross_entropy_loss(a.t(0), a.t(1), a.optT(2), Reduction(a, 3), a.i64(4), a.f64(5)););
  // nll_loss_nd, as torch.nn.functional.nll_loss: (N, C) and (N, C, d1, ...) inputs
  OP("nllLoss", return at::nll_loss_nd(a.t(0), a.t(1), a.optT(2), Reduction(a, 3), a.i64(4)););
  OP("mseLoss", return at::mse_loss(a.t(0), a.t(1), Reduction(a, 2)););
  OP("l1Loss", return at::l1_loss(a.t(0), a.t(1), Reduction(a, 2)););
  OP("bceWithLogits", return at::binary_cross_entropy_with_logits(a.t(0), a.t(1), a.optT(2), a.optT(3), Reduction(a, 4)););

  // --------------------------------------------------------- linear algebra
  OP("matmul", return at::matmul(a.t(0), a.t(1)););
  OP("mm", return at::mm(a.t(0), a.t(1)););
  OP("bmm", return at::bmm(a.t(0), a.t(1)););
  OP("linear", return at::linear(a.t(0), a.t(1), a.optT(2)););
  OP("einsum", return at::einsum(a.str(0), a.tensors(1)););
  OP("cdist", return at::cdist(a.t(0), a.t(1), a.f64(2)););

  // ------------------------------------------------------------- autograd
  OP("requiresGrad", return a.t(0).requires_grad(););
  OP("setRequiresGrad", a.t(0).set_requires_grad(a.b(1)); return None{};);
  OP("isLeaf", return a.t(0).is_leaf(););
  OP("retainGrad", a.t(0).retain_grad(); return None{};);
  // (t, gradient?, retainGraph)
  OP("backward", a.t(0).backward(a.ot(1), a.none(2) ? c10::optional<bool>() : c10::optional<bool>(a.b(2))); return None{};);
  OP("grad", return a.t(0).grad(););
  OP("setGrad", if (a.none(1)) a.t(0).mutable_grad().reset(); else a.t(0).mutable_grad() = a.t(1); return None{};);
  OP("hasGrads", { auto ps = a.tensors(0); std::vector<int64_t> out; for (auto& p : ps) out.push_back(p.grad().defined()); return out; });
  OP("zeroGrads", { auto ps = a.tensors(0); for (auto& p : ps) p.mutable_grad().reset(); return None{}; });
  OP("detach", return a.t(0).detach(););
  OP("isGradEnabled", return at::GradMode::is_enabled(););
  OP("setGradEnabled", at::GradMode::set_enabled(a.b(0)); return None{};);

  // ------------------------------------------------------------ optimizers
  ops.production.push_back({"adamStep", AdamStep, {}});
  ops.production.push_back({"sgdStep", SgdStep, {}});

  // --------------------------------------------------------- runtime, devices
  OP("setNumThreads", at::set_num_threads(static_cast<int>(a.i64(0))); return None{};);
  OP("getNumThreads", return static_cast<int64_t>(at::get_num_threads()););
  OP("cudaIsAvailable", return at::hasCUDA(););
  // (device type 'cpu' | 'cuda', on, dtype): libtorch's autocast for the ops dispatched after it
  // (torch.autocast's state); the cast cache is cleared when it goes off
  OP("autocast", {
    const bool cuda = a.str(0) == "cuda";
    const bool on = a.b(1);
    const at::ScalarType dt = a.dtype(2);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    const auto type = cuda ? at::kCUDA : at::kCPU;
    at::autocast::set_autocast_enabled(type, on);
    at::autocast::set_autocast_dtype(type, dt);
#else
    if (cuda) {
      at::autocast::set_enabled(on);
      at::autocast::set_autocast_gpu_dtype(dt);
    } else {
      at::autocast::set_cpu_enabled(on);
      at::autocast::set_autocast_cpu_dtype(dt);
    }
#endif
    if (!on) at::autocast::clear_cache();
    return None{};
  });
  OP("cudaDeviceCount", return static_cast<int64_t>(at::hasCUDA() ? at::getNumGPUs() : 0););
  // Benchmark floor: ns per at::add of (a, b) looped n times in C++ (no JS involved).
  TEST_OP("benchAddLoop", {
    at::Tensor& x = a.t(0);
    at::Tensor& y = a.t(1);
    int64_t n = a.i64(2);
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t k = 0; k < n; k++) at::add(x, y);
    auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(n);
  });
  OP("parallelInfo", return at::get_parallel_info(););
}

}  // namespace cqseg
