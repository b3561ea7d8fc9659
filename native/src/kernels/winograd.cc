// 3x3 convolutions (stride 1, padding 1, groups 1) by Winograd's minimal filtering
// F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016):
// a 2x2 output tile is A^T [(G g G^T) . (B^T d B)] A for its 4x4 input tile d, so the
// 36 multiplications per tile and channel pair of a direct convolution become 16,
// done as 16 matrix products (one per position of the 4x4 transformed tile) over blocks
// of tiles. The gradients are the same shape of computation: for the input, the same
// convolution of the output gradient with the kernels flipped and transposed; for the
// kernels, dU = (A dY A^T) . V summed over tiles (16 products again), then dW = G^T dU G.
//
// Why: the Unet decoder's 3x3 convolutions of 64 to 472 channels are most of a training
// step's arithmetic, and oneDNN and im2col + GEMM both run them near the core's peak;
// only fewer multiplications make them faster. Transforms are elementwise passes over rows (B, A, G hold 0, +-1,
// +-1/2), cheap against the products from about 64 channels on; below that the direct
// algorithms stay faster, so the caller chooses.
//
// Layout: tiles are numbered by (image, tile row, tile column); a block is a run of whole
// tile rows. V[p][ci][t] and M[p][co][t] hold position p = 4k + l of the transformed
// tiles of one block, so each product is U[p] (Co x Ci) times V[p] (Ci x T), by BLAS
// through at::mm (one call per position: faster than at::bmm at these sizes).
#include "../common.h"
#include "kernels.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

namespace cqseg {

namespace {

// Input transform of one tile row of one channel. rows[0..3]: the four input rows the
// tile row covers (a row of zeros for padding), each `w` long; e/o: scratch of tw + 1
// floats each. Writes v[p * stride + j] for the 16 positions p and the tw tiles j.
CQSEG_VEC void InputRow(const float* const rows[4], int64_t w, int64_t tw, float* e0, float* o0, float* e1, float* o1,
                        float* e2, float* o2, float* e3, float* o3, float* v, int64_t stride) {
  // B^T along rows: s0 = r0 - r2, s1 = r1 + r2, s2 = r2 - r1, s3 = r1 - r3, stored
  // deinterleaved: the padded row sp[u] = s[u - 1] (zero at u = 0 and u > w) split into
  // even e[j] = sp[2j] and odd o[j] = sp[2j + 1] columns
  float* es[4] = {e0, e1, e2, e3};
  float* os[4] = {o0, o1, o2, o3};
  const float *r0p = rows[0], *r1p = rows[1], *r2p = rows[2], *r3p = rows[3];
  auto edge = [&](int64_t u, float* const* dst, int64_t j) {  // padded column u, with bounds
    const int64_t c = u - 1;
    const bool in = c >= 0 && c < w;
    const float r0 = in ? r0p[c] : 0.0f, r1 = in ? r1p[c] : 0.0f, r2 = in ? r2p[c] : 0.0f, r3 = in ? r3p[c] : 0.0f;
    dst[0][j] = r0 - r2;
    dst[1][j] = r1 + r2;
    dst[2][j] = r2 - r1;
    dst[3][j] = r1 - r3;
  };
  // interior: even column u = 2j reads input column 2j - 1, odd u = 2j + 1 reads 2j
  const int64_t last = std::min(tw, (w - 1) / 2);  // the last j with both inside
  edge(0, es, 0);
  edge(1, os, 0);
  for (int64_t j = 1; j <= last; j++) {
    const int64_t c = 2 * j - 1;
    e0[j] = r0p[c] - r2p[c];
    e1[j] = r1p[c] + r2p[c];
    e2[j] = r2p[c] - r1p[c];
    e3[j] = r1p[c] - r3p[c];
    o0[j] = r0p[c + 1] - r2p[c + 1];
    o1[j] = r1p[c + 1] + r2p[c + 1];
    o2[j] = r2p[c + 1] - r1p[c + 1];
    o3[j] = r1p[c + 1] - r3p[c + 1];
  }
  for (int64_t j = std::max<int64_t>(1, last + 1); j <= tw; j++) {
    edge(2 * j, es, j);
    edge(2 * j + 1, os, j);
  }
  // B along columns: tile j has columns c0 = e[j], c1 = o[j], c2 = e[j+1], c3 = o[j+1]
  for (int k = 0; k < 4; k++) {
    const float* e = es[k];
    const float* o = os[k];
    float* v0 = v + (4 * k + 0) * stride;
    float* v1 = v + (4 * k + 1) * stride;
    float* v2 = v + (4 * k + 2) * stride;
    float* v3 = v + (4 * k + 3) * stride;
    for (int64_t j = 0; j < tw; j++) {
      v0[j] = e[j] - e[j + 1];
      v1[j] = o[j] + e[j + 1];
      v2[j] = e[j + 1] - o[j];
      v3[j] = o[j] - o[j + 1];
    }
  }
}

// Output transform of one tile row of one output channel: m[p * stride + j] -> output
// rows y0, y1 (y1 null past the bottom edge), w columns.
CQSEG_VEC void OutputRow(const float* m, int64_t stride, int64_t tw, float* q0, float* q1, float* q2, float* q3,
                         float* y0, float* y1, int64_t w) {
  // A^T along rows: q0_l = m0l + m1l + m2l, q1_l = m1l - m2l - m3l (l = 0..3); then along
  // columns: y[.][0] = q_0 + q_1 + q_2, y[.][1] = q_1 - q_2 - q_3
  for (int r = 0; r < 2; r++) {
    float* y = r == 0 ? y0 : y1;
    if (y == nullptr) continue;
    float* q[4] = {q0, q1, q2, q3};
    for (int l = 0; l < 4; l++) {
      const float* a = m + (0 * 4 + l) * stride;
      const float* b = m + (1 * 4 + l) * stride;
      const float* c = m + (2 * 4 + l) * stride;
      const float* d = m + (3 * 4 + l) * stride;
      float* ql = q[l];
      if (r == 0) {
        for (int64_t j = 0; j < tw; j++) ql[j] = a[j] + b[j] + c[j];
      } else {
        for (int64_t j = 0; j < tw; j++) ql[j] = b[j] - c[j] - d[j];
      }
    }
    const int64_t full = w / 2;  // tiles with both output columns inside
    for (int64_t j = 0; j < full; j++) {
      y[2 * j] = q0[j] + q1[j] + q2[j];
      y[2 * j + 1] = q1[j] - q2[j] - q3[j];
    }
    if (w % 2 == 1) y[w - 1] = q0[full] + q1[full] + q2[full];
  }
}

// Output-gradient transform of one tile row of one channel: A dY A^T for each 2x2 tile
// of rows g0, g1 (g1 null past the bottom edge) into gt[p * stride + j].
CQSEG_VEC void GradRow(const float* g0, const float* g1, int64_t w, int64_t tw, float* a0, float* a1, float* b0, float* b1,
                       float* gt, int64_t stride) {
  // columns deinterleaved, zero past the right edge: a = row 0, b = row 1; even/odd
  for (int64_t j = 0; j < tw; j++) {
    const int64_t c = 2 * j;
    a0[j] = g0[c];
    a1[j] = c + 1 < w ? g0[c + 1] : 0.0f;
    b0[j] = g1 != nullptr ? g1[c] : 0.0f;
    b1[j] = g1 != nullptr && c + 1 < w ? g1[c + 1] : 0.0f;
  }
  // A = [[1,0],[1,1],[1,-1],[0,-1]]: rows k of A g are (g0), (g0 + g1), (g0 - g1), (-g1);
  // each row (x, y) becomes (x, x + y, x - y, -y) along columns
  for (int k = 0; k < 4; k++) {
    float* p0 = gt + (4 * k + 0) * stride;
    float* p1 = gt + (4 * k + 1) * stride;
    float* p2 = gt + (4 * k + 2) * stride;
    float* p3 = gt + (4 * k + 3) * stride;
    for (int64_t j = 0; j < tw; j++) {
      float x, y;
      if (k == 0) {
        x = a0[j];
        y = a1[j];
      } else if (k == 1) {
        x = a0[j] + b0[j];
        y = a1[j] + b1[j];
      } else if (k == 2) {
        x = a0[j] - b0[j];
        y = a1[j] - b1[j];
      } else {
        x = -b0[j];
        y = -b1[j];
      }
      p0[j] = x;
      p1[j] = x + y;
      p2[j] = x - y;
      p3[j] = -y;
    }
  }
}

constexpr float kG[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};

struct Geometry {
  int64_t h, w, th, tw, rowsPerBlock;
};

Geometry Plan(int64_t h, int64_t w, int64_t channels) {
  Geometry g{h, w, (h + 1) / 2, (w + 1) / 2, 1};
  // at least 256 tiles (BLAS runs slower on narrower products), else about 64 Ki floats
  // of one transformed position per block (16 positions: 4 MiB)
  const int64_t target = std::max<int64_t>(256, (int64_t{1} << 16) / std::max<int64_t>(1, channels));
  g.rowsPerBlock = std::max<int64_t>(1, target / g.tw);
  return g;
}

// V[16][c][tiles of rows r0..r1) of x (N, C, H, W)
at::Tensor TransformInput(const at::Tensor& x, const Geometry& geo, int64_t r0, int64_t r1) {
  const int64_t c = x.size(1), tiles = (r1 - r0) * geo.tw;
  at::Tensor v = at::empty({16, c, tiles}, x.options());
  const float* xp = x.data_ptr<float>();
  float* vp = v.data_ptr<float>();
  const int64_t pstride = c * tiles;
  at::parallel_for(0, c, 1, [&](int64_t c0, int64_t c1) {
    const int64_t sw = geo.tw + 1;
    std::vector<float> scratch(8 * sw + geo.w, 0.0f);
    float* s = scratch.data();
    const float* zeros = s + 8 * sw;
    for (int64_t ci = c0; ci < c1; ci++) {
      for (int64_t r = r0; r < r1; r++) {
        const int64_t img = r / geo.th, ti = r % geo.th;
        const float* plane = xp + (img * c + ci) * geo.h * geo.w;
        const float* rows[4];
        for (int k = 0; k < 4; k++) {
          const int64_t y = 2 * ti - 1 + k;
          rows[k] = y >= 0 && y < geo.h ? plane + y * geo.w : zeros;
        }
        InputRow(rows, geo.w, geo.tw, s, s + sw, s + 2 * sw, s + 3 * sw, s + 4 * sw, s + 5 * sw, s + 6 * sw, s + 7 * sw,
                 vp + ci * tiles + (r - r0) * geo.tw, pstride);
      }
    }
  });
  return v;
}

}  // namespace

at::Tensor WinogradWeight(const at::Tensor& w) {
  TORCH_CHECK(w.dim() == 4 && w.size(2) == 3 && w.size(3) == 3 && w.scalar_type() == at::kFloat, "winograd: expected float32 3x3 kernels, got ", w.sizes());
  const at::Tensor wc = w.contiguous();
  const int64_t co = w.size(0), ci = w.size(1);
  at::Tensor u = at::empty({16, co, ci}, w.options());
  const float* wp = wc.data_ptr<float>();
  float* up = u.data_ptr<float>();
  at::parallel_for(0, co * ci, 64, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; k++) {
      const float* g = wp + k * 9;
      float t[4][3];  // G g
      for (int i = 0; i < 4; i++)
        for (int b = 0; b < 3; b++) t[i][b] = kG[i][0] * g[b] + kG[i][1] * g[3 + b] + kG[i][2] * g[6 + b];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) up[(4 * i + j) * co * ci + k] = t[i][0] * kG[j][0] + t[i][1] * kG[j][1] + t[i][2] * kG[j][2];
    }
  });
  return u;
}

at::Tensor WinogradConv(const at::Tensor& xIn, const at::Tensor& u) {
  const at::Tensor x = xIn.contiguous();
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat && u.dim() == 3 && u.size(0) == 16 && u.size(2) == x.size(1),
              "winograd: input ", x.sizes(), " does not match transformed kernels ", u.sizes());
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), co = u.size(1);
  const Geometry geo = Plan(h, w, std::max(c, co));
  at::Tensor y = at::empty({n, co, h, w}, x.options());
  float* yp = y.data_ptr<float>();
  const int64_t rows = n * geo.th;
  for (int64_t r0 = 0; r0 < rows; r0 += geo.rowsPerBlock) {
    const int64_t r1 = std::min(rows, r0 + geo.rowsPerBlock), tiles = (r1 - r0) * geo.tw;
    const at::Tensor v = TransformInput(x, geo, r0, r1);
    at::Tensor m = at::empty({16, co, tiles}, x.options());
    for (int64_t p = 0; p < 16; p++) {
      at::Tensor mp = m[p];
      at::mm_out(mp, u[p], v[p]);
    }
    const float* mp = m.data_ptr<float>();
    at::parallel_for(0, co, 1, [&](int64_t c0, int64_t c1) {
      std::vector<float> q(4 * geo.tw);
      for (int64_t o = c0; o < c1; o++) {
        for (int64_t r = r0; r < r1; r++) {
          const int64_t img = r / geo.th, ti = r % geo.th;
          float* plane = yp + (img * co + o) * h * w;
          float* y0 = plane + 2 * ti * w;
          float* y1 = 2 * ti + 1 < h ? y0 + w : nullptr;
          OutputRow(mp + o * tiles + (r - r0) * geo.tw, co * tiles, geo.tw, q.data(), q.data() + geo.tw, q.data() + 2 * geo.tw,
                    q.data() + 3 * geo.tw, y0, y1, w);
        }
      }
    });
  }
  return y;
}

at::Tensor WinogradInputGrad(const at::Tensor& g, const at::Tensor& w) {
  // the same convolution of g with the kernels flipped in space and transposed
  return WinogradConv(g, WinogradWeight(w.flip({2, 3}).transpose(0, 1)));
}

at::Tensor WinogradWeightGrad(const at::Tensor& gIn, const at::Tensor& xIn) {
  const at::Tensor g = gIn.contiguous(), x = xIn.contiguous();
  TORCH_CHECK(g.dim() == 4 && x.dim() == 4 && g.size(0) == x.size(0) && g.size(2) == x.size(2) && g.size(3) == x.size(3) &&
                  g.scalar_type() == at::kFloat && x.scalar_type() == at::kFloat,
              "winograd: output gradient ", g.sizes(), " does not match input ", x.sizes());
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), co = g.size(1);
  const Geometry geo = Plan(h, w, std::max(c, co));
  at::Tensor du = at::zeros({16, co, c}, x.options());
  const float* gp = g.data_ptr<float>();
  const int64_t rows = n * geo.th;
  for (int64_t r0 = 0; r0 < rows; r0 += geo.rowsPerBlock) {
    const int64_t r1 = std::min(rows, r0 + geo.rowsPerBlock), tiles = (r1 - r0) * geo.tw;
    const at::Tensor v = TransformInput(x, geo, r0, r1);
    at::Tensor gt = at::empty({16, co, tiles}, x.options());
    float* gtp = gt.data_ptr<float>();
    at::parallel_for(0, co, 1, [&](int64_t c0, int64_t c1) {
      std::vector<float> s(4 * geo.tw);
      for (int64_t o = c0; o < c1; o++) {
        for (int64_t r = r0; r < r1; r++) {
          const int64_t img = r / geo.th, ti = r % geo.th;
          const float* plane = gp + (img * co + o) * h * w;
          const float* g0 = plane + 2 * ti * w;
          const float* g1 = 2 * ti + 1 < h ? g0 + w : nullptr;
          GradRow(g0, g1, w, geo.tw, s.data(), s.data() + geo.tw, s.data() + 2 * geo.tw, s.data() + 3 * geo.tw,
                  gtp + o * tiles + (r - r0) * geo.tw, co * tiles);
        }
      }
    });
    for (int64_t p = 0; p < 16; p++) du[p].addmm_(gt[p], v[p].t());
  }
  // dW = G^T dU G per kernel
  at::Tensor dw = at::empty({co, c, 3, 3}, x.options());
  const float* dup = du.data_ptr<float>();
  float* dwp = dw.data_ptr<float>();
  at::parallel_for(0, co * c, 64, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; k++) {
      float t[3][4];  // G^T dU
      for (int a = 0; a < 3; a++)
        for (int j = 0; j < 4; j++) {
          float s = 0;
          for (int i = 0; i < 4; i++) s += kG[i][a] * dup[(4 * i + j) * co * c + k];
          t[a][j] = s;
        }
      for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) dwp[k * 9 + a * 3 + b] = t[a][0] * kG[0][b] + t[a][1] * kG[1][b] + t[a][2] * kG[2][b] + t[a][3] * kG[3][b];
    }
  });
  return dw;
}

namespace {

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

}  // namespace

void RegisterWinogradOps(Ops& ops) {
    // (x (N,C,H,W), w (Co,C,3,3), bias?): conv2d with padding 1 whose gradients are Winograd's
  OP("conv2dWinograd", {
    const at::Tensor& x = a.t(0);
    const at::Tensor& w = a.t(1);
    TORCH_CHECK(x.dim() == 4 && x.device().is_cpu() && x.scalar_type() == at::kFloat && w.dim() == 4 && w.size(1) == x.size(1) && w.size(2) == 3 && w.size(3) == 3 &&
                    w.scalar_type() == at::kFloat,
                "conv2dWinograd: x must be float32 (N,C,H,W) on the CPU and w (Co,C,3,3)");
    return WinogradConvFn::apply(x, w, Opt(a.ot(2)));
  });
    // (x, w) -> conv2d(x, w, padding 1) and (gradOutput, x, w) -> [dx, dw]: the raw Winograd
  // kernels (winograd.cc), for tests
  TEST_OP("winogradConv2d", return WinogradConv(a.t(0), WinogradWeight(a.t(1))););
    TEST_OP("winogradConv2dGrads", return std::vector<at::Tensor>{WinogradInputGrad(a.t(0), a.t(2)), WinogradWeightGrad(a.t(0), a.t(1))};);
}

}  // namespace cqseg
