// Depthwise convolutions (groups = channels): libtorch's forward, and backward kernels
// for the cases where libtorch 1.13's CPU backward is slow (the weight gradient, and the
// input gradient of stride-2 3x3 convolutions). ConvBackward is the gradient every fused
// node's convolution uses.
#include "../common.h"
#include "kernels.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

namespace cqseg {

namespace {

// ------------------------------------------------------------ depthwise convolution
// NCHW float32, multiplier 1, dilation 1, padding (top pt, left pl; bottom and right follow
// from the output size). y[oy, ox] = sum_ij w[i, j] x[oy*sh - pt + i, ox*sw - pl + j].

int64_t CeilDiv(int64_t a, int64_t s) { return a >= 0 ? (a + s - 1) / s : -((-a) / s); }
int64_t FloorDiv(int64_t a, int64_t s) { return a >= 0 ? a / s : -((-a + s - 1) / s); }

// The range of ox whose tap at offset j (stride s, padding p) lands inside [0, w).
inline void TapRange(int64_t j, int64_t s, int64_t p, int64_t w, int64_t ow, int64_t* lo, int64_t* hi) {
  *lo = std::max<int64_t>(0, CeilDiv(p - j, s));
  *hi = std::min<int64_t>(ow - 1, FloorDiv(w - 1 + p - j, s));
}

// The weight gradient's scratch for one (n, c) plane: g with rows of owp (ow rounded up to
// 8) floats, zeros past ow; x zero-padded to hp = (oh-1)*sh + kh rows and split by column
// phase (column % sw) into sw planes of wq = owp + (kw-1)/sw columns, so that the tap
// (i, j) of output (oy, ox) reads xs[j % sw][oy*sh + i][ox + j/sw]: contiguous in ox.
struct DwPlanes {
  int64_t kh, kw, sh, sw, pt, pl, h, w, oh, ow, owp, hp, wq;
  std::vector<float> gs, xs;
  DwPlanes(int64_t kh_, int64_t kw_, int64_t sh_, int64_t sw_, int64_t pt_, int64_t pl_, int64_t h_, int64_t w_, int64_t oh_, int64_t ow_)
      : kh(kh_), kw(kw_), sh(sh_), sw(sw_), pt(pt_), pl(pl_), h(h_), w(w_), oh(oh_), ow(ow_), owp((ow_ + 7) / 8 * 8), hp((oh_ - 1) * sh_ + kh_),
        wq(owp + (kw_ - 1) / sw_), gs(static_cast<size_t>(oh * owp), 0.0f), xs(static_cast<size_t>(sw * hp * wq)) {}
  void Load(const float* g, const float* x) {
    for (int64_t oy = 0; oy < oh; oy++) std::copy(g + oy * ow, g + (oy + 1) * ow, gs.data() + oy * owp);
    std::fill(xs.begin(), xs.end(), 0.0f);
    for (int64_t y = 0; y < h; y++) {
      const int64_t r = y + pt;
      if (r >= hp) break;
      const float* src = x + y * w;
      // padded column q = c + pl goes to phase q % sw, index q / sw (read once, in order)
      const int64_t n = std::min(w, sw * wq - pl);
      if (sw == 1) {
        std::copy(src, src + n, xs.data() + r * wq + pl);
      } else if (sw == 2) {
        float* d0 = xs.data() + r * wq;
        float* d1 = xs.data() + (hp + r) * wq;
        int64_t c = 0;
        if ((pl & 1) && n > 0) d1[pl >> 1] = src[c++];
        for (; c + 1 < n; c += 2) {  // c + pl even
          d0[(c + pl) >> 1] = src[c];
          d1[(c + pl) >> 1] = src[c + 1];
        }
        if (c < n) d0[(c + pl) >> 1] = src[c];
      } else {
        for (int64_t c = 0; c < n; c++) xs[static_cast<size_t>((((c + pl) % sw) * hp + r) * wq + (c + pl) / sw)] = src[c];
      }
    }
  }
  // the first x value tap (i, j) reads for output row 0
  const float* Tap(int64_t i, int64_t j) const { return xs.data() + ((j % sw) * hp + i) * wq + j / sw; }
};

// Rows per float block of the tap sums: about 1024 values a lane (8 lanes) before the
// block's sums are added in double.
inline int64_t DwBlockRows(int64_t owp) { return std::max<int64_t>(1, 8192 / owp); }

// acc[t] += sum over rows [r0, r1) and ox < owp of gs[oy][ox] * taps[t][oy*rs + ox], t < nt
void TapSums(const float* gs, int64_t owp, const float* const* taps, int nt, int64_t rs, int64_t r0, int64_t r1, double* acc) {
  for (int t = 0; t < nt; t++) {
    float s = 0;
    for (int64_t oy = r0; oy < r1; oy++) {
      const float* gr = gs + oy * owp;
      const float* xr = taps[t] + oy * rs;
      for (int64_t ox = 0; ox < owp; ox++) s += gr[ox] * xr[ox];
    }
    acc[t] += s;
  }
}

#ifdef CQSEG_X86
// TapSums for NT taps at once, 8 lanes: one load of g serves NT fused multiply-adds.
template <int NT>
__attribute__((target("avx2,fma"))) void TapSumsAvx2(const float* gs, int64_t owp, const float* const* taps, int64_t rs, int64_t r0, int64_t r1, double* acc) {
  __m256 a[NT];
#pragma GCC unroll 8
  for (int t = 0; t < NT; t++) a[t] = _mm256_setzero_ps();
  for (int64_t oy = r0; oy < r1; oy++) {
    const float* gr = gs + oy * owp;
    const int64_t ro = oy * rs;
    for (int64_t ox = 0; ox < owp; ox += 8) {
      const __m256 gv = _mm256_loadu_ps(gr + ox);
#pragma GCC unroll 8
      for (int t = 0; t < NT; t++) a[t] = _mm256_fmadd_ps(gv, _mm256_loadu_ps(taps[t] + ro + ox), a[t]);
    }
  }
  for (int t = 0; t < NT; t++) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, a[t]);
    double s = 0;
    for (float v : lanes) s += v;
    acc[t] += s;
  }
}
#endif

// grad of w (C,1,kh,kw): sum over n, oy, ox of g[n,c,oy,ox] x[n,c,oy*sh-pt+i,ox*sw-pl+j],
// per plane over DwPlanes' scratch; sums in float over blocks of rows, in double above.
at::Tensor DepthwiseWeightGrad(const at::Tensor& gIn, const at::Tensor& xIn, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pl) {
  at::Tensor g = gIn.contiguous(), x = xIn.contiguous();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), oh = g.size(2), ow = g.size(3);
  at::Tensor out = at::empty({c, 1, kh, kw}, x.options());
  const float* gp = g.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const bool avx2 = HasAvx2();
  at::parallel_for(0, c, 1, [&](int64_t c0, int64_t c1) {
    DwPlanes d(kh, kw, sh, sw, pt, pl, h, w, oh, ow);
    std::vector<double> acc(static_cast<size_t>(kh * kw));
    const int64_t rb = DwBlockRows(d.owp), rs = sh * d.wq;
    for (int64_t ch = c0; ch < c1; ch++) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t b = 0; b < n; b++) {
        d.Load(gp + (b * c + ch) * oh * ow, xp + (b * c + ch) * h * w);
        for (int64_t i = 0; i < kh; i++) {
          for (int64_t j0 = 0; j0 < kw; j0 += 5) {
            const int nt = static_cast<int>(std::min<int64_t>(5, kw - j0));
            const float* taps[5];
            for (int t = 0; t < nt; t++) taps[t] = d.Tap(i, j0 + t);
            double* a = acc.data() + i * kw + j0;
            for (int64_t r0 = 0; r0 < oh; r0 += rb) {
              const int64_t r1 = std::min(oh, r0 + rb);
#ifdef CQSEG_X86
              if (avx2) {
                switch (nt) {
                  case 5: TapSumsAvx2<5>(d.gs.data(), d.owp, taps, rs, r0, r1, a); break;
                  case 4: TapSumsAvx2<4>(d.gs.data(), d.owp, taps, rs, r0, r1, a); break;
                  case 3: TapSumsAvx2<3>(d.gs.data(), d.owp, taps, rs, r0, r1, a); break;
                  case 2: TapSumsAvx2<2>(d.gs.data(), d.owp, taps, rs, r0, r1, a); break;
                  default: TapSumsAvx2<1>(d.gs.data(), d.owp, taps, rs, r0, r1, a); break;
                }
                continue;
              }
#endif
              TapSums(d.gs.data(), d.owp, taps, nt, rs, r0, r1, a);
            }
          }
        }
      }
      for (int64_t k = 0; k < kh * kw; k++) op[ch * kh * kw + k] = static_cast<float>(acc[static_cast<size_t>(k)]);
    }
  });
  return out;
}

// grad of x (N,C,H,W): dx[oy*sh-pt+i, ox*sw-pl+j] += g[oy, ox] w[i, j].
at::Tensor DepthwiseInputGrad(const at::Tensor& gIn, const at::Tensor& wIn, int64_t h, int64_t w, int64_t sh, int64_t sw, int64_t pt, int64_t pl) {
  at::Tensor g = gIn.contiguous(), wt = wIn.contiguous();
  const int64_t n = g.size(0), c = g.size(1), oh = g.size(2), ow = g.size(3), kh = wt.size(2), kw = wt.size(3);
  at::Tensor out = at::zeros({n, c, h, w}, g.options());
  const float* gp = g.data_ptr<float>();
  const float* wp = wt.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, n * c, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const float* gpl = gp + p * oh * ow;
      float* dpl = op + p * h * w;
      const float* wk = wp + (p % c) * kh * kw;
      for (int64_t oy = 0; oy < oh; oy++) {
        const float* gr = gpl + oy * ow;
        for (int64_t i = 0; i < kh; i++) {
          const int64_t y = oy * sh - pt + i;
          if (y < 0 || y >= h) continue;
          for (int64_t j = 0; j < kw; j++) {
            int64_t lo, hi;
            TapRange(j, sw, pl, w, ow, &lo, &hi);
            const float wv = wk[i * kw + j];
            float* d = dpl + y * w - pl + j;
            if (sw == 1) {
#pragma omp simd
              for (int64_t ox = lo; ox <= hi; ox++) d[ox] += gr[ox] * wv;
            } else {
              for (int64_t ox = lo; ox <= hi; ox++) d[ox * sw] += gr[ox] * wv;
            }
          }
        }
      }
    }
  });
  return out;
}

}  // namespace

// Gradients of conv2d(pad(x, pads), w, stride, groups) for x and w (each when asked),
// pads = [left, right, top, bottom]. Depthwise float32 convolutions take, per gradient,
// the faster kernel on the Unet(efficientnet-b2) shapes: ours for every weight gradient
// and for the input of stride-2 3x3 ones, libtorch's otherwise (its stride-1 input
// gradients run near its forward's speed). Timings: README, Training, "Speed and memory".
std::pair<at::Tensor, at::Tensor> ConvBackward(const at::Tensor& g, const at::Tensor& x, const at::Tensor& w, const std::vector<int64_t>& stride,
                                               const std::vector<int64_t>& pads, int64_t groups, bool needX, bool needW) {
  const int64_t kh = w.size(2), kw = w.size(3), l = pads[0], r = pads[1], t = pads[2], bt = pads[3];
  const bool depthwise = groups > 1 && groups == x.size(1) && w.size(0) == groups && w.size(1) == 1 && x.scalar_type() == at::kFloat && x.device().is_cpu();
  const bool ourX = depthwise && needX && stride[0] == 2 && stride[1] == 2 && kh == 3 && kw == 3;
  const bool ourW = depthwise && needW;
  at::Tensor gx, gw;
  if ((needX && !ourX) || (needW && !ourW)) {
    const bool sym = l == r && t == bt;
    const at::Tensor xp = sym ? x : at::constant_pad_nd(x, {l, r, t, bt});
    const std::vector<int64_t> p = sym ? std::vector<int64_t>{t, l} : std::vector<int64_t>{0, 0};
    auto res = at::convolution_backward(g, xp, w, c10::nullopt, stride, p, {1, 1}, false, {0, 0}, groups, {needX && !ourX, needW && !ourW, false});
    gx = std::get<0>(res);
    gw = std::get<1>(res);
    if (gx.defined() && !sym) gx = gx.narrow(2, t, x.size(2)).narrow(3, l, x.size(3)).contiguous();
  }
  if (ourX) gx = DepthwiseInputGrad(g, w, x.size(2), x.size(3), stride[0], stride[1], t, l);
  if (ourW) gw = DepthwiseWeightGrad(g, x, kh, kw, stride[0], stride[1], t, l);
  return {gx, gw};
}

namespace {

// at::conv2d forward; backward by ConvBackward. Not twice differentiable.
struct DepthwiseConv2dFn : public torch::autograd::Function<DepthwiseConv2dFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& bias,
                            std::vector<int64_t> stride, std::vector<int64_t> padding) {
    ctx->save_for_backward({x, w});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["bias"] = bias.has_value() && bias->defined();
    return at::conv2d(x, w, bias, stride, padding, {1, 1}, x.size(1));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor g = grads[0].contiguous();
    const auto stride = ctx->saved_data["stride"].toIntVector();
    const auto p = ctx->saved_data["padding"].toIntVector();
    auto [gx, gw] = ConvBackward(g, saved[0], saved[1], stride, {p[1], p[1], p[0], p[0]}, saved[0].size(1), ctx->needs_input_grad(0), ctx->needs_input_grad(1));
    at::Tensor gb;
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) gb = g.sum({0, 2, 3});
    return {gx, gw, gb, at::Tensor(), at::Tensor()};
  }
};

// (x, w, bias?, stride[2], padding[2]): x float32 CPU (N,C,H,W), w (C,1,kh,kw)
at::Tensor DepthwiseConv2d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, std::vector<int64_t> stride, std::vector<int64_t> padding) {
  TORCH_CHECK(x.dim() == 4 && w.dim() == 4 && w.size(0) == x.size(1) && w.size(1) == 1, "depthwiseConv2d: x must be (N,C,H,W) and w (C,1,kH,kW)");
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat, "depthwiseConv2d: float32 CPU tensors only");
  TORCH_CHECK(stride.size() == 2 && padding.size() == 2, "depthwiseConv2d: stride and padding take 2 values");
  return DepthwiseConv2dFn::apply(x, w, bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt, stride, padding);
}

// Checks of the raw kernels' arguments (the autograd paths derive them from the forward):
// float32 4-D gradOutput whose N and C match `ref`, 2 strides >= 1 and 2 paddings >= 0.
std::pair<std::vector<int64_t>, std::vector<int64_t>> RawKernelArgs(Args& a, const at::Tensor& ref, const char* op) {
  const at::Tensor& g = a.t(0);
  TORCH_CHECK(g.dim() == 4 && ref.dim() == 4 && g.scalar_type() == at::kFloat && ref.scalar_type() == at::kFloat && g.size(0) == ref.size(0) &&
                  g.size(1) == ref.size(1),
              op, ": gradOutput and x must be float32 (N,C,H,W) of one N and C");
  auto s = a.ints(4), p = a.ints(5);
  TORCH_CHECK(s.size() == 2 && p.size() == 2 && s[0] >= 1 && s[1] >= 1 && p[0] >= 0 && p[1] >= 0, op, ": stride takes 2 values >= 1 and padding 2 values >= 0");
  return {s, p};
}

}  // namespace

void RegisterDepthwiseOps(Ops& ops) {
    OP("depthwiseConv2d", return DepthwiseConv2d(a.t(0), a.t(1), a.ot(2), a.ints(3), a.ints(4)););
    // (gradOutput, x, kh, kw, stride[2], padding[2]) and (gradOutput, w, h, w, stride[2], padding[2]): the raw kernels, for tests
  TEST_OP("depthwiseWeightGrad", {
    auto [s, p] = RawKernelArgs(a, a.t(1), "depthwiseWeightGrad");
    return DepthwiseWeightGrad(a.t(0), a.t(1), a.i64(2), a.i64(3), s[0], s[1], p[0], p[1]);
  });
    TEST_OP("depthwiseInputGrad", {
    TORCH_CHECK(a.t(1).dim() == 4 && a.t(1).size(0) == a.t(0).size(1) && a.t(1).size(1) == 1, "depthwiseInputGrad: w must be (C,1,kH,kW) for gradOutput's C");
    auto [s, p] = RawKernelArgs(a, a.t(0), "depthwiseInputGrad");
    return DepthwiseInputGrad(a.t(0), a.t(1), a.i64(2), a.i64(3), s[0], s[1], p[0], p[1]);
  });
}

}  // namespace cqseg
