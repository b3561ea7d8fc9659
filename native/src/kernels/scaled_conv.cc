// A convolution of x * scale (squeeze-and-excitation before a projection) as one node
// that keeps x and scale, not their product (scaledConv2d).
#include "../common.h"
#include "kernels.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

namespace cqseg {

namespace {

// Sums in float over blocks of at most 1024 values, added up in double.
constexpr int64_t kBlock = 1024;

// sum_i dz[i] x[i] (float over blocks of kBlock in 8 lanes, added in double); then dz *= s
CQSEG_VEC double DotThenScale(float* dz, const float* x, int64_t n, float s) {
  double total = 0;
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t b1 = std::min(n, b0 + kBlock);
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = b0;
    for (; i + 8 <= b1; i += 8) {
      for (int l = 0; l < 8; l++) lanes[l] += dz[i + l] * x[i + l];
    }
    float tail = 0;
    for (; i < b1; i++) tail += dz[i] * x[i];
    for (float v : lanes) total += v;
    total += tail;
  }
  for (int64_t i = 0; i < n; i++) dz[i] *= s;
  return total;
}

// conv2d(x * scale, w, b, stride, padding) with scale (N,C,1,1) or (1,C,1,1)
// (squeeze-and-excitation before a 1x1 projection) as one node that keeps x and scale, not
// their product. A float32 1x1 convolution with stride 1 and no padding never forms the
// product: the scale goes into per-sample weights, y[n] = (w * scale[n]) x[n], and the
// gradients take the unscaled z[n] = w^T g[n]: dx = scale z, dscale = sum_hw z x in one
// pass, dw = sum_n (g[n] x[n]^T) * scale[n].
struct ScaledConvFn : public torch::autograd::Function<ScaledConvFn> {
  static bool Pointwise(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& w, const std::vector<int64_t>& stride, const std::vector<int64_t>& padding) {
    return w.size(2) == 1 && w.size(3) == 1 && stride[0] == 1 && stride[1] == 1 && padding[0] == 0 && padding[1] == 0 && x.scalar_type() == at::kFloat &&
           scale.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat && x.device().is_cpu();
  }
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& scale, const at::Tensor& w,
                            const c10::optional<at::Tensor>& bias, std::vector<int64_t> stride, std::vector<int64_t> padding) {
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["bias"] = bias.has_value() && bias->defined();
    if (!Pointwise(x, scale, w, stride, padding)) {
      ctx->save_for_backward({x, scale, w});
      return at::conv2d(x * scale, w, bias, stride, padding);
    }
    const at::Tensor xc = x.contiguous();
    ctx->save_for_backward({xc, scale, w});
    const int64_t n = x.size(0), c = x.size(1), co = w.size(0), hw = x.size(2) * x.size(3);
    const at::Tensor s = scale.expand({n, c, 1, 1}).reshape({n, 1, c});
    const at::Tensor wn = w.reshape({1, co, c}) * s;  // (N, Co, C): per-sample weights
    at::Tensor y = at::empty({n, co, x.size(2), x.size(3)}, x.options());
    // one product a sample (at::bmm copied its operands here)
    for (int64_t b = 0; b < n; b++) {
      at::Tensor yb = y[b].view({co, hw});
      at::mm_out(yb, wn[b], xc[b].view({c, hw}));
    }
    if (bias.has_value() && bias->defined()) y.add_(bias->view({1, co, 1, 1}));
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto sv = ctx->get_saved_variables();
    const at::Tensor& x = sv[0];
    const at::Tensor& scale = sv[1];
    const at::Tensor& w = sv[2];
    const at::Tensor g = grads[0].contiguous();
    const auto stride = ctx->saved_data["stride"].toIntVector();
    const auto padding = ctx->saved_data["padding"].toIntVector();
    const bool needXs = ctx->needs_input_grad(0) || ctx->needs_input_grad(1);
    at::Tensor gx, gs, gw, gb;
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(3)) gb = g.sum({0, 2, 3});
    if (!Pointwise(x, scale, w, stride, padding)) {
      const at::Tensor xs = x * scale;
      auto r = at::convolution_backward(g, xs, w, c10::nullopt, stride, padding, {1, 1}, false, {0, 0}, 1, {needXs, ctx->needs_input_grad(2), false});
      const at::Tensor& gxs = std::get<0>(r);
      if (ctx->needs_input_grad(0)) gx = gxs * scale;
      if (ctx->needs_input_grad(1)) gs = (gxs * x).sum({2, 3}, true).sum_to_size(scale.sizes());
      return {gx, gs, std::get<1>(r), gb, at::Tensor(), at::Tensor()};
    }
    const int64_t n = x.size(0), c = x.size(1), co = w.size(0), hw = x.size(2) * x.size(3);
    const at::Tensor s = scale.expand({n, c, 1, 1}).reshape({n, c}).contiguous();
    const at::Tensor w2 = w.reshape({co, c});
    const at::Tensor g3 = g.view({n, co, hw}), x3 = x.view({n, c, hw});
    if (needXs) {
      at::Tensor z = at::empty({n, c, hw}, g.options());
      for (int64_t b = 0; b < n; b++) {
        at::Tensor zb = z[b];
        at::mm_out(zb, w2.t(), g3[b]);
      }
      at::Tensor sums = at::empty({n, c}, at::kDouble);
      float* zp = z.data_ptr<float>();
      const float* xp = x3.data_ptr<float>();
      const float* spp = s.data_ptr<float>();
      double* op = sums.data_ptr<double>();
      at::parallel_for(0, n * c, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) op[r] = DotThenScale(zp + r * hw, xp + r * hw, hw, spp[r]);
      });
      if (ctx->needs_input_grad(0)) gx = z.view(x.sizes());
      if (ctx->needs_input_grad(1)) gs = sums.to(at::kFloat).view({n, c, 1, 1}).sum_to_size(scale.sizes());
    }
    if (ctx->needs_input_grad(2)) {
      at::Tensor acc = at::zeros({co, c}, g.options());
      for (int64_t b = 0; b < n; b++) acc.addcmul_(at::mm(g3[b], x3[b].t()), s[b].view({1, c}));
      gw = acc.view(w.sizes());
    }
    return {gx, gs, gw, gb, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

void RegisterScaledConvOps(Ops& ops) {
    // (x (N,C,H,W), scale (N,C,1,1), w, bias?, stride[2], padding[2])
  OP("scaledConv2d", {
    TORCH_CHECK(a.t(0).dim() == 4 && a.t(1).dim() == 4 && a.t(1).size(2) == 1 && a.t(1).size(3) == 1, "scaledConv2d: x must be (N,C,H,W) and scale (N,C,1,1)");
    return ScaledConvFn::apply(a.t(0), a.t(1), a.t(2), Opt(a.ot(3)), a.ints(4), a.ints(5));
  });
}

}  // namespace cqseg
