// Op table, part for hand-written CPU kernels: the two places where libtorch has no
// fused op and its composition measured 2-7x slower than the reference tools
// (see bench/dcin.ts). Each is a plain loop over contiguous memory, parallel over
// at::parallel_for, with no state.
//   rgbHistogramCounts: joint RGB histogram in one pass (libtorch's shift + index +
//     bincount took 2.5-3.1 ms per 512x768 image against cv2.calcHist's 1.5 ms).
//   int8Dot: integer dot products of int16 queries with int8 rows, the coarse pass of
//     the exact LRIS search (reads a quarter of the float32 bank's bytes).
#include "common.h"

#include <ATen/Parallel.h>

#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define CQSEG_X86 1
#endif

namespace cqseg {

namespace {

// Adds the bins of `n` pixels into `hist` (bins >> shift per channel, flat (r*b+g)*b+b).
// Four interleaved partial histograms break the store-to-load chains of repeated bins.
template <int64_t step>
void HistPixels(const uint8_t* r, const uint8_t* g, const uint8_t* b, int64_t n,
                int shift, int bits, uint32_t* part /* ways * nb */, int64_t nb, int ways) {
  const int64_t o1 = ways == 4 ? nb : 0, o2 = 2 * o1, o3 = 3 * o1;
  int64_t i = 0;
  auto bin = [&](int64_t k) {
    return ((static_cast<uint32_t>(r[k * step]) >> shift) << (2 * bits)) |
           ((static_cast<uint32_t>(g[k * step]) >> shift) << bits) |
           (static_cast<uint32_t>(b[k * step]) >> shift);
  };
  for (; i + 4 <= n; i += 4) {
    part[bin(i)]++;
    part[o1 + bin(i + 1)]++;
    part[o2 + bin(i + 2)]++;
    part[o3 + bin(i + 3)]++;
  }
  for (; i < n; i++) part[bin(i)]++;
}

// images uint8 contiguous (N,3,H,W) (nhwc false) or (N,H,W,3) (nhwc true) -> int64 (N, nb)
at::Tensor RgbHistogramCounts(const at::Tensor& x, bool nhwc, int64_t shift) {
  TORCH_CHECK(x.device().is_cpu(), "rgbHistogramCounts: CPU tensors only");
  TORCH_CHECK(x.scalar_type() == at::kByte, "rgbHistogramCounts: uint8 images only");
  TORCH_CHECK(x.dim() == 4 && x.size(nhwc ? 3 : 1) == 3, "rgbHistogramCounts: images must be (N,3,H,W) or (N,H,W,3)");
  TORCH_CHECK(shift >= 0 && shift <= 8, "rgbHistogramCounts: shift must be 0..8");
  at::Tensor c = x.contiguous();
  const int bits = 8 - static_cast<int>(shift);
  const int64_t nb = int64_t{1} << (3 * bits);
  const int ways = nb <= 4096 ? 4 : 1;  // partial histograms only while they stay cache-sized
  const int64_t n = c.size(0);
  const int64_t px = nhwc ? c.size(1) * c.size(2) : c.size(2) * c.size(3);
  at::Tensor out = at::zeros({n, nb}, at::kLong);
  const uint8_t* src = c.data_ptr<uint8_t>();
  int64_t* dst = out.data_ptr<int64_t>();
  // Parallel over (image, pixel chunk) so that one image still uses every thread; each
  // job counts into its own partials, added into the output once all are done. Large
  // bin counts (more than 16 per channel) take one job per image, added at once.
  const bool split = nb <= 4096;
  const int64_t chunk = split ? int64_t{1} << 18 : std::max<int64_t>(px, 1);
  const int64_t per = (px + chunk - 1) / chunk;
  std::vector<std::vector<uint32_t>> parts(static_cast<size_t>(split ? n * per : 0));
  auto merge = [nb, ways](int64_t* h, const std::vector<uint32_t>& part) {
    for (int w = 0; w < ways; w++) {
      for (int64_t k = 0; k < nb; k++) h[k] += part[static_cast<size_t>(w * nb + k)];
    }
  };
  at::parallel_for(0, n * per, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; job++) {
      const int64_t img = job / per, p0 = (job % per) * chunk, cnt = std::min(chunk, px - p0);
      const uint8_t* base = src + img * px * 3;
      std::vector<uint32_t> part(static_cast<size_t>(ways * nb), 0);
      if (nhwc) HistPixels<3>(base + 3 * p0, base + 3 * p0 + 1, base + 3 * p0 + 2, cnt, static_cast<int>(shift), bits, part.data(), nb, ways);
      else HistPixels<1>(base + p0, base + px + p0, base + 2 * px + p0, cnt, static_cast<int>(shift), bits, part.data(), nb, ways);
      if (split) parts[static_cast<size_t>(job)] = std::move(part);
      else merge(dst + img * nb, part);
    }
  });
  for (size_t job = 0; job < parts.size(); job++) merge(dst + static_cast<int64_t>(job) / per * nb, parts[job]);
  return out;
}

// sum_k q[k] * c[k] of int16 q and int8 c, exact in int64.
int64_t DotScalar(const int16_t* q, const int8_t* c, int64_t d) {
  int64_t s = 0;
  for (int64_t k = 0; k < d; k++) s += int32_t{q[k]} * int32_t{c[k]};
  return s;
}

#ifdef CQSEG_X86
// AVX2: 16 products per madd into 8 int32 lanes; each lane takes at most 2 products of
// |q| <= 32767, |c| <= 127 per step (8.3e6), and a block of 128 steps over two
// accumulators (at most 64 each, 5.3e8, summed 1.07e9) never overflows int32 before it
// is added into the int64 total. One row at a time: the scan is bound by memory
// (measured: 4-row blocking, which shares the loads of q, ran 1.4x slower).
__attribute__((target("avx2"))) int64_t DotAvx2(const int16_t* q, const int8_t* c, int64_t d) {
  int64_t total = 0;
  const int64_t body = d - d % 16;
  for (int64_t k0 = 0; k0 < body; k0 += 128 * 16) {
    const int64_t end = std::min(body, k0 + 128 * 16);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    int64_t k = k0;
    for (; k + 32 <= end; k += 32) {
      // two rows ahead (a prefetch never faults past the end): measured 10-15% faster
      _mm_prefetch(reinterpret_cast<const char*>(c + k + 3072), _MM_HINT_T0);
      const __m256i c0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + k)));
      const __m256i c1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + k + 16)));
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(c0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + k))));
      acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(c1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + k + 16))));
    }
    if (k < end) {
      const __m256i c0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + k)));
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(c0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + k))));
    }
    alignas(32) int32_t lanes[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes + 8), acc1);
    for (int32_t v : lanes) total += v;
  }
  return total + DotScalar(q + body, c + body, d - body);
}
#endif

// codes int8 (M, D), queries int16 (Q, D) -> float64 (Q, M) of exact integer dot products;
// with rows (int64 (K)), only those rows of codes -> (Q, K).
at::Tensor Int8Dot(const at::Tensor& codes, const at::Tensor& queries, const at::Tensor& rows) {
  TORCH_CHECK(codes.device().is_cpu() && queries.device().is_cpu(), "int8Dot: CPU tensors only");
  TORCH_CHECK(codes.scalar_type() == at::kChar && codes.dim() == 2, "int8Dot: codes must be int8 (M, D)");
  TORCH_CHECK(queries.scalar_type() == at::kShort && queries.dim() == 2, "int8Dot: queries must be int16 (Q, D)");
  TORCH_CHECK(codes.size(1) == queries.size(1), "int8Dot: codes and queries differ in D");
  at::Tensor c = codes.contiguous(), q = queries.contiguous();
  const int64_t m = c.size(0), d = c.size(1), nq = q.size(0);
  at::Tensor idx;
  if (rows.defined()) {
    TORCH_CHECK(rows.device().is_cpu() && rows.scalar_type() == at::kLong && rows.dim() == 1, "int8Dot: rows must be int64 (K)");
    idx = rows.contiguous();
    TORCH_CHECK(idx.numel() == 0 || (idx.min().item<int64_t>() >= 0 && idx.max().item<int64_t>() < m), "int8Dot: a row index is out of range");
  }
  const int64_t k = idx.defined() ? idx.numel() : m;
  const int64_t* ip = idx.defined() ? idx.data_ptr<int64_t>() : nullptr;
  at::Tensor out = at::empty({nq, k}, at::kDouble);
  const int8_t* cp = c.data_ptr<int8_t>();
  const int16_t* qp = q.data_ptr<int16_t>();
  double* op = out.data_ptr<double>();
  auto dot = DotScalar;
#ifdef CQSEG_X86
  if (__builtin_cpu_supports("avx2")) dot = DotAvx2;
#endif
  at::parallel_for(0, k, 256, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) {
      const int8_t* row = cp + (ip ? ip[r] : r) * d;
      for (int64_t j = 0; j < nq; j++) op[j * k + r] = static_cast<double>(dot(qp + j * d, row, d));
    }
  });
  return out;
}

}  // namespace

void RegisterKernelOps(std::vector<OpDef>& ops) {
  OP("rgbHistogramCounts", return RgbHistogramCounts(a.t(0), a.b(1), a.i64(2)););
  OP("int8Dot", return Int8Dot(a.t(0), a.t(1), a.ot(2)););
}

}  // namespace cqseg
