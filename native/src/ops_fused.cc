// Op table, part for fused training ops: batch norm (batch statistics) followed by SiLU,
// as one autograd node that keeps only its input; the same followed by a convolution
// (SiLU or ReLU between); a channel-scaled convolution; a convolution of an upsampled
// concatenation. libtorch records two nodes here, and the
// SiLU node keeps the batch-norm output, a full activation-sized tensor per layer (a
// fifth of Unet(efficientnet-b2)'s saved activations); the fused backward recomputes it.
// Formulas: batch norm as torch.nn.functional.batch_norm (biased variance to normalise,
// unbiased for the running estimate; Ioffe & Szegedy 2015), SiLU x * sigmoid(x); the
// backward is the standard batch-norm gradient
//   dx = w * invstd * (dz - mean(dz) - xhat * mean(dz * xhat)),
//   dz = g * s * (1 + z (1 - s)), s = sigmoid(z), z = w * xhat + b.
#include "common.h"
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

// How a fused node's convolution runs: libtorch's choice; im2col + GEMM (thnn_conv2d;
// groups 1, symmetric pads); or libtorch's forward with Winograd F(2x2, 3x3) gradients
// (winograd.cc; 3x3, stride 1, padding 1, groups 1). An algorithm that does not apply to
// the convolution's shape falls back to libtorch's.
enum Algo : int64_t { kAuto = 0, kGemm = 1, kWinograd = 2 };

Algo AlgoOf(const std::string& name, const char* op) {
  if (name == "auto") return kAuto;
  if (name == "gemm") return kGemm;
  if (name == "winograd") return kWinograd;
  TORCH_CHECK(false, op, ": algorithm must be 'auto', 'gemm' or 'winograd', got '", name, "'");
}

// Winograd's gradients only where libtorch runs one thread: with two, its OpenMP workers
// and OpenBLAS's threads contend, and it measured 1.3-2x slower than libtorch's on the
// Unet decoder's shapes (2-core machine), while 10-20% faster on one thread.
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

// conv2d(x, w, b, padding 1) (3x3, stride 1): libtorch's forward, Winograd gradients
// where they apply (ConvGrads; libtorch's otherwise)
struct WinogradConvFn : public torch::autograd::Function<WinogradConvFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b) {
    ctx->save_for_backward({x, w});
    ctx->saved_data["bias"] = b.has_value() && b->defined();
    return at::conv2d(x, w, b, {1, 1}, {1, 1});
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto sv = ctx->get_saved_variables();
    const at::Tensor g = grads[0].contiguous();
    auto [gx, gw] = ConvGrads(g, sv[0], sv[1], {1, 1}, {1, 1, 1, 1}, 1, kWinograd, ctx->needs_input_grad(0), ctx->needs_input_grad(1));
    at::Tensor gb;
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) gb = g.sum({0, 2, 3});
    return {gx, gw, gb};
  }
};

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

c10::optional<at::Tensor> Opt(const at::Tensor& t) { return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt; }

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

void RegisterFusedOps(std::vector<OpDef>& ops) {
  OP("batchNormSilu", return BatchNormSilu(a.t(0), a.t(1), a.t(2), a.ot(3), a.ot(4), a.f64(5), a.f64(6)););
  OP("batchNormActConv2d", return BatchNormActConv(a););
  OP("upCatConv2d", return UpCatConv(a););
  // (x (N,C,H,W), w (Co,C,3,3), bias?): conv2d with padding 1 whose gradients are Winograd's
  OP("conv2dWinograd", {
    const at::Tensor& x = a.t(0);
    const at::Tensor& w = a.t(1);
    TORCH_CHECK(x.dim() == 4 && x.device().is_cpu() && x.scalar_type() == at::kFloat && w.dim() == 4 && w.size(1) == x.size(1) && w.size(2) == 3 && w.size(3) == 3 &&
                    w.scalar_type() == at::kFloat,
                "conv2dWinograd: x must be float32 (N,C,H,W) on the CPU and w (Co,C,3,3)");
    return WinogradConvFn::apply(x, w, Opt(a.ot(2)));
  });
  // (x (N,C,H,W), scale (N,C,1,1), w, bias?, stride[2], padding[2])
  OP("scaledConv2d", {
    TORCH_CHECK(a.t(0).dim() == 4 && a.t(1).dim() == 4 && a.t(1).size(2) == 1 && a.t(1).size(3) == 1, "scaledConv2d: x must be (N,C,H,W) and scale (N,C,1,1)");
    return ScaledConvFn::apply(a.t(0), a.t(1), a.t(2), Opt(a.ot(3)), a.ints(4), a.ints(5));
  });
}

}  // namespace cqseg
