// Batch norm (batch statistics) followed by SiLU or ReLU, as one autograd node that keeps
// only its input (batchNormSilu), and the same followed by a convolution
// (batchNormActConv2d). libtorch records two or three nodes here, and the
// SiLU node keeps the batch-norm output, a full activation-sized tensor per layer (a
// fifth of Unet(efficientnet-b2)'s saved activations); the fused backward recomputes it.
// Formulas: batch norm as torch.nn.functional.batch_norm (biased variance to normalise,
// unbiased for the running estimate; Ioffe & Szegedy 2015), SiLU x * sigmoid(x); the
// backward is the standard batch-norm gradient
//   dx = w * invstd * (dz - mean(dz) - xhat * mean(dz * xhat)),
//   dz = g * s * (1 + z (1 - s)), s = sigmoid(z), z = w * xhat + b.
#include "../common.h"
#include "kernels.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

namespace cqseg {

namespace {

// Sums in float over blocks of at most 1024 values, added up in double.
constexpr int64_t kBlock = 1024;

inline float SigmoidScalar(float z) { return 1.0f / (1.0f + std::exp(-z)); }

#ifdef CQSEG_X86
// exp(x) for 8 floats, Cephes' expf (range reduction by ln 2, degree-6 polynomial), about
// 1-2 ulp over the clamped range [-87.3, 88.7].
__attribute__((target("avx2,fma"))) inline __m256 Exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3365f)), _mm256_set1_ps(88.7228f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

__attribute__((target("avx2,fma"))) inline __m256 Sigmoid8(__m256 z) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, Exp8(_mm256_sub_ps(_mm256_setzero_ps(), z))));
}

__attribute__((target("avx2,fma"))) inline float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// sum of x and of (x - mu)^2 over n values
__attribute__((target("avx2,fma"))) void SumsAvx2(const float* x, int64_t n, float mu, double* sum, double* sq) {
  const __m256 m = _mm256_set1_ps(mu);
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t b1 = std::min(n, b0 + kBlock);
    __m256 s = _mm256_setzero_ps(), q = _mm256_setzero_ps();
    int64_t i = b0;
    for (; i + 8 <= b1; i += 8) {
      const __m256 v = _mm256_loadu_ps(x + i);
      const __m256 d = _mm256_sub_ps(v, m);
      s = _mm256_add_ps(s, v);
      q = _mm256_fmadd_ps(d, d, q);
    }
    float ts = HSum(s), tq = HSum(q);
    for (; i < b1; i++) {
      ts += x[i];
      tq += (x[i] - mu) * (x[i] - mu);
    }
    *sum += ts;
    *sq += tq;
  }
}

// y = silu(x * a + c)
__attribute__((target("avx2,fma"))) void ForwardAvx2(const float* x, float* y, int64_t n, float a, float c) {
  const __m256 va = _mm256_set1_ps(a), vc = _mm256_set1_ps(c);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 z = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, vc);
    _mm256_storeu_ps(y + i, _mm256_mul_ps(z, Sigmoid8(z)));
  }
  for (; i < n; i++) {
    const float z = x[i] * a + c;
    y[i] = z * SigmoidScalar(z);
  }
}

// dz = g * s * (1 + z (1 - s)) into dz; sums of dz and dz * (x - mu)
__attribute__((target("avx2,fma"))) void BackwardSumsAvx2(const float* x, const float* g, float* dz, int64_t n, float a, float c, float mu, double* sdz, double* sdzx) {
  const __m256 va = _mm256_set1_ps(a), vc = _mm256_set1_ps(c), m = _mm256_set1_ps(mu), one = _mm256_set1_ps(1.0f);
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t b1 = std::min(n, b0 + kBlock);
    __m256 s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    int64_t i = b0;
    for (; i + 8 <= b1; i += 8) {
      const __m256 xv = _mm256_loadu_ps(x + i);
      const __m256 z = _mm256_fmadd_ps(xv, va, vc);
      const __m256 s = Sigmoid8(z);
      const __m256 d = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(g + i), s), _mm256_fmadd_ps(z, _mm256_sub_ps(one, s), one));
      _mm256_storeu_ps(dz + i, d);
      s1 = _mm256_add_ps(s1, d);
      s2 = _mm256_fmadd_ps(d, _mm256_sub_ps(xv, m), s2);
    }
    float t1 = HSum(s1), t2 = HSum(s2);
    for (; i < b1; i++) {
      const float z = x[i] * a + c, s = SigmoidScalar(z), d = g[i] * s * (1 + z * (1 - s));
      dz[i] = d;
      t1 += d;
      t2 += d * (x[i] - mu);
    }
    *sdz += t1;
    *sdzx += t2;
  }
}
#endif

void Sums(const float* x, int64_t n, float mu, double* sum, double* sq, bool avx2) {
#ifdef CQSEG_X86
  if (avx2) return SumsAvx2(x, n, mu, sum, sq);
#endif
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    float ts = 0, tq = 0;
    for (int64_t i = b0; i < std::min(n, b0 + kBlock); i++) {
      ts += x[i];
      tq += (x[i] - mu) * (x[i] - mu);
    }
    *sum += ts;
    *sq += tq;
  }
}

enum Act : int64_t { kSilu = 0, kRelu = 1 };

void Forward(const float* x, float* y, int64_t n, float a, float c, bool avx2, Act act) {
  if (act == kRelu) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = std::max(x[i] * a + c, 0.0f);
    return;
  }
#ifdef CQSEG_X86
  if (avx2) return ForwardAvx2(x, y, n, a, c);
#endif
  for (int64_t i = 0; i < n; i++) {
    const float z = x[i] * a + c;
    y[i] = z * SigmoidScalar(z);
  }
}

void BackwardSums(const float* x, const float* g, float* dz, int64_t n, float a, float c, float mu, double* sdz, double* sdzx, bool avx2, Act act) {
  if (act == kRelu) {
    for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
      float t1 = 0, t2 = 0;
      const int64_t b1 = std::min(n, b0 + kBlock);
#pragma omp simd reduction(+ : t1, t2)
      for (int64_t i = b0; i < b1; i++) {
        const float d = x[i] * a + c > 0 ? g[i] : 0.0f;
        dz[i] = d;
        t1 += d;
        t2 += d * (x[i] - mu);
      }
      *sdz += t1;
      *sdzx += t2;
    }
    return;
  }
#ifdef CQSEG_X86
  if (avx2) return BackwardSumsAvx2(x, g, dz, n, a, c, mu, sdz, sdzx);
#endif
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    float t1 = 0, t2 = 0;
    for (int64_t i = b0; i < std::min(n, b0 + kBlock); i++) {
      const float z = x[i] * a + c, s = SigmoidScalar(z), d = g[i] * s * (1 + z * (1 - s));
      dz[i] = d;
      t1 += d;
      t2 += d * (x[i] - mu);
    }
    *sdz += t1;
    *sdzx += t2;
  }
}

struct BnStats {
  at::Tensor y, mean, invstd, varUnbiased;
};

// y = act(batchnorm(x)) with batch statistics; x contiguous float32 (N,C,...)
BnStats BnActForward(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps, Act act) {
  const int64_t n = x.size(0), c = x.size(1), hw = x.numel() / std::max<int64_t>(1, n * c), m = n * hw;
  TORCH_CHECK(m > 1, "batch norm in training: expected more than 1 value per channel, got input size ", x.sizes());
  BnStats r{at::empty_like(x), at::empty({c}, x.options()), at::empty({c}, x.options()), at::empty({c}, x.options().dtype(at::kDouble))};
  const float* xp = x.data_ptr<float>();
  float* yp = r.y.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  const float* bp = b.data_ptr<float>();
  float* mp = r.mean.data_ptr<float>();
  float* ip = r.invstd.data_ptr<float>();
  double* vp = r.varUnbiased.data_ptr<double>();
  const bool avx2 = HasAvx2();
  at::parallel_for(0, c, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ch++) {
      double sum = 0, unused = 0;
      for (int64_t k = 0; k < n; k++) Sums(xp + (k * c + ch) * hw, hw, 0.0f, &sum, &unused, avx2);
      const double mu = sum / static_cast<double>(m);
      double s2 = 0, sq = 0;
      for (int64_t k = 0; k < n; k++) Sums(xp + (k * c + ch) * hw, hw, static_cast<float>(mu), &s2, &sq, avx2);
      // the float mean's own offset: sum (x - mu_f)^2 = sum (x - mu)^2 + M (mu - mu_f)^2
      const double off = mu - static_cast<double>(static_cast<float>(mu));
      const double var = std::max(0.0, sq / static_cast<double>(m) - off * off);
      const float is = static_cast<float>(1.0 / std::sqrt(var + eps));
      mp[ch] = static_cast<float>(mu);
      ip[ch] = is;
      vp[ch] = var * static_cast<double>(m) / static_cast<double>(m - 1);
      const float a = is * wp[ch], cc = bp[ch] - static_cast<float>(mu) * a;
      for (int64_t k = 0; k < n; k++) Forward(xp + (k * c + ch) * hw, yp + (k * c + ch) * hw, hw, a, cc, avx2, act);
    }
  });
  return r;
}

// y again from the saved statistics (the fused nodes' recomputation)
at::Tensor BnActRecompute(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& mean, const at::Tensor& invstd, Act act) {
  const int64_t n = x.size(0), c = x.size(1), hw = x.numel() / std::max<int64_t>(1, n * c);
  at::Tensor y = at::empty_like(x);
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const float *wp = w.data_ptr<float>(), *bp = b.data_ptr<float>(), *mp = mean.data_ptr<float>(), *ip = invstd.data_ptr<float>();
  const bool avx2 = HasAvx2();
  at::parallel_for(0, c, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ch++) {
      const float a = ip[ch] * wp[ch], cc = bp[ch] - mp[ch] * a;
      for (int64_t k = 0; k < n; k++) Forward(xp + (k * c + ch) * hw, yp + (k * c + ch) * hw, hw, a, cc, avx2, act);
    }
  });
  return y;
}

void UpdateRunning(const c10::optional<at::Tensor>& runningMean, const c10::optional<at::Tensor>& runningVar, const BnStats& st, double momentum) {
  if (!runningMean.has_value() || !runningVar.has_value()) return;
  at::NoGradGuard guard;
  at::Tensor rm = *runningMean, rv = *runningVar;
  rm.mul_(1 - momentum).add_(st.mean, momentum);
  rv.mul_(1 - momentum).add_(st.varUnbiased.to(rv.scalar_type()), momentum);
}

// [dx, dw, db] of y = act(batchnorm(x)) for the output gradient g
std::vector<at::Tensor> BnActBackward(const at::Tensor& x, const at::Tensor& gIn, const at::Tensor& w, const at::Tensor& b, const at::Tensor& mean, const at::Tensor& invstd, Act act) {
  const at::Tensor g = gIn.contiguous();
  const int64_t n = x.size(0), c = x.size(1), hw = x.numel() / std::max<int64_t>(1, n * c), m = n * hw;
  at::Tensor dx = at::empty_like(x);
  at::Tensor gw = at::empty({c}, x.options()), gb = at::empty({c}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  float* dp = dx.data_ptr<float>();
  const float *wp = w.data_ptr<float>(), *bp = b.data_ptr<float>(), *mp = mean.data_ptr<float>(), *ip = invstd.data_ptr<float>();
  float* gwp = gw.data_ptr<float>();
  float* gbp = gb.data_ptr<float>();
  const bool avx2 = HasAvx2();
  at::parallel_for(0, c, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ch++) {
      const float mu = mp[ch], is = ip[ch], a = is * wp[ch], cc = bp[ch] - mu * a;
      double sdz = 0, sdzx = 0;
      for (int64_t k = 0; k < n; k++) {
        const int64_t o = (k * c + ch) * hw;
        BackwardSums(xp + o, gp + o, dp + o, hw, a, cc, mu, &sdz, &sdzx, avx2, act);
      }
      gbp[ch] = static_cast<float>(sdz);
      gwp[ch] = static_cast<float>(sdzx * is);
      // dx = a * (dz - mean(dz)) - a * is^2 * (x - mu) * mean(dz * (x - mu))
      const float k1 = static_cast<float>(sdz / static_cast<double>(m));
      const float k2 = static_cast<float>(sdzx / static_cast<double>(m)) * is * is;
      for (int64_t k = 0; k < n; k++) {
        const int64_t o = (k * c + ch) * hw;
        float* d = dp + o;
        const float* xr = xp + o;
#pragma omp simd
        for (int64_t i = 0; i < hw; i++) d[i] = a * (d[i] - k1 - (xr[i] - mu) * k2);
      }
    }
  });
  return {dx, gw, gb};
}

struct BatchNormSiluFn : public torch::autograd::Function<BatchNormSiluFn> {
  // x (N,C,H,W) float32; w, b (C); running stats (C) updated in place; returns y.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& xIn, const at::Tensor& w, const at::Tensor& b,
                            const c10::optional<at::Tensor>& runningMean, const c10::optional<at::Tensor>& runningVar, double momentum, double eps) {
    const at::Tensor x = xIn.contiguous(), wc = w.contiguous(), bc = b.contiguous();
    BnStats st = BnActForward(x, wc, bc, eps, kSilu);
    UpdateRunning(runningMean, runningVar, st, momentum);
    ctx->save_for_backward({x, wc, bc, st.mean, st.invstd});
    return st.y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto sv = ctx->get_saved_variables();
    auto r = BnActBackward(sv[0], grads[0], sv[1], sv[2], sv[3], sv[4], kSilu);
    return {r[0], r[1], r[2], at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

Act ActOf(const std::string& name) {
  if (name == "silu") return kSilu;
  if (name == "relu") return kRelu;
  TORCH_CHECK(false, "batchNormActConv2d: activation must be 'silu' or 'relu', got '", name, "'");
}

// conv2d(pad(act(batchnorm(x)), pads), cw, cb, stride, groups) as one node that keeps x
// and not the activation between the two (recomputed in backward: one elementwise pass).
struct BatchNormActConvFn : public torch::autograd::Function<BatchNormActConvFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& xIn, const at::Tensor& w, const at::Tensor& b,
                            const c10::optional<at::Tensor>& runningMean, const c10::optional<at::Tensor>& runningVar, double momentum, double eps,
                            const at::Tensor& cw, const c10::optional<at::Tensor>& cb, std::vector<int64_t> stride, std::vector<int64_t> pads, int64_t groups,
                            int64_t act, int64_t algo) {
    const at::Tensor x = xIn.contiguous(), wc = w.contiguous(), bc = b.contiguous();
    BnStats st = BnActForward(x, wc, bc, eps, static_cast<Act>(act));
    UpdateRunning(runningMean, runningVar, st, momentum);
    at::Tensor out = ConvForward(st.y, cw, cb, stride, pads, groups, static_cast<Algo>(algo));
    ctx->save_for_backward({x, wc, bc, st.mean, st.invstd, cw});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["pads"] = pads;
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["act"] = act;
    ctx->saved_data["algo"] = algo;
    ctx->saved_data["bias"] = cb.has_value() && cb->defined();
    // needs_input_grad counts tensor arguments only: the conv weight's edge follows the running statistics given
    ctx->saved_data["cwEdge"] = int64_t{3} + runningMean.has_value() + runningVar.has_value();
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto sv = ctx->get_saved_variables();
    const at::Tensor g = grads[0].contiguous();
    const Act act = static_cast<Act>(ctx->saved_data["act"].toInt());
    const at::Tensor y = BnActRecompute(sv[0], sv[1], sv[2], sv[3], sv[4], act);
    const bool needX = ctx->needs_input_grad(0) || ctx->needs_input_grad(1) || ctx->needs_input_grad(2);
    const size_t cwEdge = static_cast<size_t>(ctx->saved_data["cwEdge"].toInt());
    auto [gy, gcw] = ConvGrads(g, y, sv[5], ctx->saved_data["stride"].toIntVector(), ctx->saved_data["pads"].toIntVector(),
                               ctx->saved_data["groups"].toInt(), static_cast<Algo>(ctx->saved_data["algo"].toInt()), needX, ctx->needs_input_grad(cwEdge));
    at::Tensor gcb;
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(cwEdge + 1)) gcb = g.sum({0, 2, 3});
    std::vector<at::Tensor> r = needX ? BnActBackward(sv[0], gy, sv[1], sv[2], sv[3], sv[4], act) : std::vector<at::Tensor>{at::Tensor(), at::Tensor(), at::Tensor()};
    return {r[0], r[1], r[2], at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), gcw, gcb, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// (x, weight, bias, runningMean?, runningVar?, momentum, eps)
at::Tensor BatchNormSilu(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& rm, const at::Tensor& rv, double momentum, double eps) {
  TORCH_CHECK(x.dim() >= 2 && x.device().is_cpu() && x.scalar_type() == at::kFloat, "batchNormSilu: x must be a float32 CPU tensor (N,C,...)");
  TORCH_CHECK(w.defined() && b.defined() && w.numel() == x.size(1) && b.numel() == x.size(1) && w.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat,
              "batchNormSilu: weight and bias must be float32 (C)");
  return BatchNormSiluFn::apply(x, w, b, Opt(rm), Opt(rv), momentum, eps);
}


// (x, weight, bias, runningMean?, runningVar?, momentum, eps, convWeight, convBias?, stride[2], pads[4] (l, r, t, b), groups, activation, algorithm)
at::Tensor BatchNormActConv(Args& a) {
  const at::Tensor& x = a.t(0);
  const at::Tensor& w = a.t(1);
  const at::Tensor& b = a.t(2);
  TORCH_CHECK(x.dim() == 4 && x.device().is_cpu() && x.scalar_type() == at::kFloat, "batchNormActConv2d: x must be a float32 CPU tensor (N,C,H,W)");
  TORCH_CHECK(w.numel() == x.size(1) && b.numel() == x.size(1), "batchNormActConv2d: weight and bias must be (C)");
  const auto pads = a.ints(10);
  TORCH_CHECK(pads.size() == 4 && a.ints(9).size() == 2, "batchNormActConv2d: stride takes 2 values and pads 4");
  return BatchNormActConvFn::apply(x, w, b, Opt(a.ot(3)), Opt(a.ot(4)), a.f64(5), a.f64(6), a.t(7), Opt(a.ot(8)), a.ints(9), pads, a.i64(11),
                                   static_cast<int64_t>(ActOf(a.str(12))), static_cast<int64_t>(AlgoOf(a.str(13), "batchNormActConv2d")));
}

}  // namespace

void RegisterBatchNormActOps(Ops& ops) {
    OP("batchNormSilu", return BatchNormSilu(a.t(0), a.t(1), a.t(2), a.ot(3), a.ot(4), a.f64(5), a.f64(6)););
    OP("batchNormActConv2d", return BatchNormActConv(a););
}

}  // namespace cqseg
