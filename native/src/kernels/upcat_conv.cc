// A Unet decoder block's first convolution over the nearest x2 upsampling of x
// concatenated with the skip feature (upCatConv2d), as one node that keeps x and skip,
// not the upsampled concatenation; polyphase for 3x3 kernels with padding 1.
#include "../common.h"
#include "kernels.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

namespace cqseg {

namespace {

// o[2j] = p[j], o[2j + 1] = q[j], j < w (p = q: one row of a nearest x2 upsampling)
CQSEG_VEC void InterleaveRow(const float* p, const float* q, int64_t w, float* o) {
  for (int64_t j = 0; j < w; j++) {
    o[2 * j] = p[j];
    o[2 * j + 1] = q[j];
  }
}

// o[2j] += p[j], o[2j + 1] += q[j], j < w
CQSEG_VEC void InterleaveAddRow(const float* p, const float* q, int64_t w, float* o) {
  for (int64_t j = 0; j < w; j++) {
    o[2 * j] += p[j];
    o[2 * j + 1] += q[j];
  }
}

// o[j] = r[2j], j < w
CQSEG_VEC void EvenRow(const float* r, int64_t w, float* o) {
  for (int64_t j = 0; j < w; j++) o[j] = r[2 * j];
}

// o[j] = a[2j] + a[2j + 1] + b[2j] + b[2j + 1], j < w: one row of the 2x2 block sums
CQSEG_VEC void BlockSumRow(const float* a, const float* b, int64_t w, float* o) {
  for (int64_t j = 0; j < w; j++) o[j] = (a[2 * j] + a[2 * j + 1]) + (b[2 * j] + b[2 * j + 1]);
}

// cat([upsample_nearest_x2(x), skip], 1) written once, plane by plane; x (N,Cx,H,W) and
// skip (N,Cs,2H,2W) (or undefined) float32 CPU (as upCatConv2d checks).
at::Tensor UpCat(const at::Tensor& xIn, const at::Tensor& skipIn) {
  const at::Tensor x = xIn.contiguous();
  const at::Tensor skip = skipIn.defined() ? skipIn.contiguous() : skipIn;
  const int64_t n = x.size(0), cx = x.size(1), h = x.size(2), w = x.size(3), cs = skip.defined() ? skip.size(1) : 0;
  at::Tensor out = at::empty({n, cx + cs, 2 * h, 2 * w}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* sp = skip.defined() ? skip.data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  const int64_t plane = 4 * h * w;
  at::parallel_for(0, n * (cx + cs), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t b = p / (cx + cs), c = p % (cx + cs);
      float* o = op + p * plane;
      if (c >= cx) {
        const float* s = sp + (b * cs + c - cx) * plane;
        std::copy(s, s + plane, o);
        continue;
      }
      const float* xr = xp + (b * cx + c) * h * w;
      for (int64_t y = 0; y < h; y++) {
        InterleaveRow(xr + y * w, xr + y * w, w, o + 2 * y * 2 * w);
        std::copy(o + 2 * y * 2 * w, o + (2 * y + 1) * 2 * w, o + (2 * y + 1) * 2 * w);
      }
    }
  });
  return out;
}

// UpCat's gradients from the concatenation's: the 2x2 block sums of the first cx channels
// (N,Cx,H,W) and, with a skip, a copy of the others.
std::pair<at::Tensor, at::Tensor> UpCatGrads(const at::Tensor& ginIn, int64_t cx, bool hasSkip) {
  const at::Tensor gin = ginIn.contiguous();
  const int64_t n = gin.size(0), ct = gin.size(1), h2 = gin.size(2), w2 = gin.size(3), h = h2 / 2, w = w2 / 2, cs = ct - cx;
  at::Tensor gx = at::empty({n, cx, h, w}, gin.options());
  at::Tensor gs = hasSkip ? at::empty({n, cs, h2, w2}, gin.options()) : at::Tensor();
  const float* gp = gin.data_ptr<float>();
  float* xp = gx.data_ptr<float>();
  float* sp = hasSkip ? gs.data_ptr<float>() : nullptr;
  const int64_t planes = n * (hasSkip ? ct : cx);
  at::parallel_for(0, planes, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t q = p0; q < p1; q++) {
      const int64_t b = q / (hasSkip ? ct : cx), c = q % (hasSkip ? ct : cx);
      const float* g = gp + (b * ct + c) * h2 * w2;
      if (c >= cx) {
        std::copy(g, g + h2 * w2, sp + (b * cs + c - cx) * h2 * w2);
        continue;
      }
      float* o = xp + (b * cx + c) * h * w;
      for (int64_t y = 0; y < h; y++) BlockSumRow(g + 2 * y * w2, g + (2 * y + 1) * w2, w, o + y * w);
    }
  });
  return {gx, gs};
}

// ---------------------------------------------------------------- polyphase upsampling
// A 3x3 convolution (padding 1) of a nearest x2 upsampling reads, for the output pixel
// (2i+a, 2j+b), only the input rows i-1+a..i+a and columns j-1+b..j+b: four 2x2 kernels
// (one a phase (a, b)) on the small map, 16 multiplications an output pixel instead of
// 36. Along one axis, phase 0 takes rows (w0, w1 + w2) and phase 1 (w0 + w1, w2). With
// the four kernels stacked as 4*Co output channels (phase k = 2a + b), one convolution of
// x padded by 1 gives every phase on an (H+1) x (W+1) grid, phase (a, b)'s values at
// [a, a+H) x [b, b+W).

// phase a's two taps from three: (v0, v1 + v2) or (v0 + v1, v2)
inline void PhaseTaps(float v0, float v1, float v2, int64_t a, float* t) {
  t[0] = a == 0 ? v0 : v0 + v1;
  t[1] = a == 0 ? v1 + v2 : v2;
}

// (Co, Ci, 3, 3) float32 -> the four phases' 2x2 kernels (4*Co, Ci, 2, 2): rows, then columns
at::Tensor PhaseWeights(const at::Tensor& wIn) {
  const at::Tensor w = wIn.contiguous();
  const int64_t co = w.size(0), ci = w.size(1);
  at::Tensor out = at::empty({4 * co, ci, 2, 2}, w.options());
  const float* wp = w.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, co * ci, 256, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; k++) {
      const float* v = wp + k * 9;
      for (int64_t a = 0; a < 2; a++) {
        float rows[2][3];
        for (int64_t c = 0; c < 3; c++) {
          float t[2];
          PhaseTaps(v[c], v[3 + c], v[6 + c], a, t);
          rows[0][c] = t[0];
          rows[1][c] = t[1];
        }
        for (int64_t b = 0; b < 2; b++) {
          float* dst = op + ((2 * a + b) * co * ci + k) * 4;
          for (int64_t r = 0; r < 2; r++) PhaseTaps(rows[r][0], rows[r][1], rows[r][2], b, dst + 2 * r);
        }
      }
    }
  });
  return out;
}

// gradient of PhaseWeights: (4*Co, Ci, 2, 2) -> (Co, Ci, 3, 3); phase tap t of phase a
// came from taps {0} and {1, 2} (a = 0) or {0, 1} and {2} (a = 1)
at::Tensor PhaseWeightsGrad(const at::Tensor& dIn, int64_t co) {
  const at::Tensor d = dIn.contiguous();
  const int64_t ci = d.size(1);
  at::Tensor out = at::empty({co, ci, 3, 3}, d.options());
  const float* dp = d.data_ptr<float>();
  float* op = out.data_ptr<float>();
  static constexpr int64_t kFrom[2][3] = {{0, 1, 1}, {0, 0, 1}};  // [a][tap] -> phase tap
  at::parallel_for(0, co * ci, 256, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; k++) {
      float acc[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t ph = 0; ph < 4; ph++) {
        const float* g = dp + (ph * co * ci + k) * 4;
        for (int64_t r = 0; r < 3; r++) {
          for (int64_t c = 0; c < 3; c++) acc[r * 3 + c] += g[kFrom[ph / 2][r] * 2 + kFrom[ph % 2][c]];
        }
      }
      std::copy(acc, acc + 9, op + k * 9);
    }
  });
  return out;
}

// y[n, c, 2i+a, 2j+b] = (or +=, with add) yf[n, (2a+b)*Co + c, i+a, j+b]; y (N, Co, 2H, 2W)
// and yf (N, 4*Co, H+1, W+1) contiguous float32
void AssemblePhases(const at::Tensor& yf, const at::Tensor& y, bool add) {
  const int64_t n = y.size(0), co = y.size(1), h = y.size(2) / 2, w = y.size(3) / 2;
  const float* fp = yf.data_ptr<float>();
  float* op = y.data_ptr<float>();
  const int64_t fplane = (h + 1) * (w + 1);
  at::parallel_for(0, n * co, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t b = p / co, c = p % co;
      for (int64_t a = 0; a < 2; a++) {
        const float* e = fp + (b * 4 * co + 2 * a * co + c) * fplane + a * (w + 1);      // phase (a, 0)
        const float* o = fp + (b * 4 * co + (2 * a + 1) * co + c) * fplane + a * (w + 1) + 1;  // phase (a, 1)
        for (int64_t i = 0; i < h; i++) {
          float* dst = op + (p * 2 * h + 2 * i + a) * 2 * w;
          if (add) InterleaveAddRow(e + i * (w + 1), o + i * (w + 1), w, dst);
          else InterleaveRow(e + i * (w + 1), o + i * (w + 1), w, dst);
        }
      }
    }
  });
}

// AssemblePhases' adjoint: g (N, Co, 2H, 2W) -> gf (N, 4*Co, H+1, W+1), zero where a phase
// has no output pixel
at::Tensor DisassemblePhases(const at::Tensor& g) {
  const int64_t n = g.size(0), co = g.size(1), h = g.size(2) / 2, w = g.size(3) / 2;
  at::Tensor gf = at::empty({n, 4 * co, h + 1, w + 1}, g.options());
  const float* gp = g.data_ptr<float>();
  float* fp = gf.data_ptr<float>();
  at::parallel_for(0, n * 4 * co, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t b = p / (4 * co), k = (p / co) % 4, c = p % co, pa = k / 2, pb = k % 2;
      float* dst = fp + p * (h + 1) * (w + 1);
      for (int64_t r = 0; r <= h; r++) {
        float* row = dst + r * (w + 1);
        const int64_t i = r - pa;
        if (i < 0 || i >= h) {
          std::fill(row, row + w + 1, 0.0f);
          continue;
        }
        row[pb == 0 ? w : 0] = 0.0f;
        EvenRow(gp + ((b * co + c) * 2 * h + 2 * i + pa) * 2 * w + pb, w, row + pb);
      }
    }
  });
  return gf;
}

// conv2d(cat([upsample_nearest_x2(x), skip?]), cw, cb, padding) (a Unet decoder block's
// first convolution) as one node that keeps x and skip, not the upsampled concatenation.
// With algorithm 'auto', a 3x3 kernel and padding 1, x's part runs polyphase (above) and
// the skip's part as its own convolution added in; otherwise the concatenation is formed
// (remade in backward) and convolved by the algorithm asked for.
struct UpCatConvFn : public torch::autograd::Function<UpCatConvFn> {
  static at::Tensor Input(const at::Tensor& x, const c10::optional<at::Tensor>& skip) { return UpCat(x, skip.has_value() ? *skip : at::Tensor()); }
  static bool Polyphase(const at::Tensor& cw, const std::vector<int64_t>& padding, int64_t algo) {
    return algo == kAuto && cw.scalar_type() == at::kFloat && cw.size(2) == 3 && cw.size(3) == 3 && padding[0] == 1 && padding[1] == 1;
  }
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const c10::optional<at::Tensor>& skip, const at::Tensor& cw,
                            const c10::optional<at::Tensor>& cb, std::vector<int64_t> padding, int64_t algo) {
    ctx->save_for_backward({x, skip.has_value() ? *skip : at::Tensor(), cw});
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["algo"] = algo;
    ctx->saved_data["skip"] = skip.has_value();
    ctx->saved_data["bias"] = cb.has_value() && cb->defined();
    if (!Polyphase(cw, padding, algo)) {
      return ConvForward(Input(x, skip), cw, cb, {1, 1}, {padding[1], padding[1], padding[0], padding[0]}, 1, static_cast<Algo>(algo));
    }
    const int64_t cx = x.size(1), co = cw.size(0);
    const at::Tensor w4 = PhaseWeights(cw.narrow(1, 0, cx));
    ctx->saved_data["w4"] = w4;
    const at::Tensor yf = at::conv2d(x, w4, c10::nullopt, {1, 1}, {1, 1}).contiguous();
    at::Tensor y;
    if (skip.has_value()) {
      y = at::conv2d(*skip, cw.narrow(1, cx, cw.size(1) - cx), cb, {1, 1}, {1, 1}).contiguous();
    } else {
      y = at::empty({x.size(0), co, 2 * x.size(2), 2 * x.size(3)}, x.options());
    }
    AssemblePhases(yf, y, skip.has_value());
    if (!skip.has_value() && cb.has_value() && cb->defined()) y.add_(cb->view({1, co, 1, 1}));
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto sv = ctx->get_saved_variables();
    const at::Tensor& x = sv[0];
    const at::Tensor& cw = sv[2];
    const bool hasSkip = ctx->saved_data["skip"].toBool();
    const at::Tensor g = grads[0].contiguous();
    const auto p = ctx->saved_data["padding"].toIntVector();
    const int64_t algo = ctx->saved_data["algo"].toInt();
    const size_t cwEdge = hasSkip ? 2 : 1;
    const bool needW = ctx->needs_input_grad(cwEdge);
    at::Tensor gx, gs, gcw, gcb;
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(cwEdge + 1)) gcb = g.sum({0, 2, 3});
    if (!Polyphase(cw, p, algo)) {
      const bool needIn = ctx->needs_input_grad(0) || (hasSkip && ctx->needs_input_grad(1));
      const at::Tensor in = Input(x, hasSkip ? c10::optional<at::Tensor>(sv[1]) : c10::nullopt);
      at::Tensor gin;
      std::tie(gin, gcw) = ConvGrads(g, in, cw, {1, 1}, {p[1], p[1], p[0], p[0]}, 1, static_cast<Algo>(algo), needIn, needW);
      if (needIn) std::tie(gx, gs) = UpCatGrads(gin, x.size(1), hasSkip);
      return {gx, gs, gcw, gcb, at::Tensor(), at::Tensor()};
    }
    const int64_t cx = x.size(1), co = cw.size(0);
    at::Tensor gw4, gws;
    std::tie(gx, gw4) = ConvGrads(DisassemblePhases(g), x, ctx->saved_data["w4"].toTensor(), {1, 1}, {1, 1, 1, 1}, 1, kAuto, ctx->needs_input_grad(0), needW);
    if (hasSkip) {
      const at::Tensor& skip = sv[1];
      std::tie(gs, gws) = ConvGrads(g, skip, cw.narrow(1, cx, cw.size(1) - cx), {1, 1}, {1, 1, 1, 1}, 1, kAuto, ctx->needs_input_grad(1), needW);
    }
    if (needW) gcw = hasSkip ? at::cat({PhaseWeightsGrad(gw4, co), gws}, 1) : PhaseWeightsGrad(gw4, co);
    return {gx, gs, gcw, gcb, at::Tensor(), at::Tensor()};
  }
};

// (x, skip?, convWeight, convBias?, padding[2], algorithm)
at::Tensor UpCatConv(Args& a) {
  const at::Tensor& x = a.t(0);
  const at::Tensor skip = a.ot(1);
  TORCH_CHECK(x.dim() == 4 && x.device().is_cpu() && x.scalar_type() == at::kFloat, "upCatConv2d: x must be a float32 CPU tensor (N,C,H,W)");
  TORCH_CHECK(!skip.defined() || (skip.dim() == 4 && skip.size(0) == x.size(0) && skip.size(2) == 2 * x.size(2) && skip.size(3) == 2 * x.size(3)),
              "upCatConv2d: skip must be (N, C, 2H, 2W) of x (N, C, H, W)");
  TORCH_CHECK(!skip.defined() || (skip.device().is_cpu() && skip.scalar_type() == at::kFloat), "upCatConv2d: skip must be a float32 CPU tensor like x");
  TORCH_CHECK(a.ints(4).size() == 2, "upCatConv2d: padding takes 2 values");
  return UpCatConvFn::apply(x, Opt(skip), a.t(2), Opt(a.ot(3)), a.ints(4), static_cast<int64_t>(AlgoOf(a.str(5), "upCatConv2d")));
}

}  // namespace

void RegisterUpCatConvOps(Ops& ops) {
    OP("upCatConv2d", return UpCatConv(a););
}

}  // namespace cqseg
