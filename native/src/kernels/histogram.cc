// Joint RGB histogram of uint8 images in one pass (rgbHistogramCounts): GRIS's
// descriptor. A plain loop over contiguous memory, parallel over images and rows, with
// an AVX2 path for the bin indices of planar images.
#include "../common.h"
#include "kernels.h"

#include <ATen/Parallel.h>

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

#ifdef CQSEG_X86
// HistPixels<1> with four partial histograms for planar channels and bins <= 4 bits per
// channel: bin indices of 32 pixels at a time in AVX2 registers (per byte r >> shift and
// (r' << bits) | g', then 16 bits wide << bits | b'), read back four at a time as one
// 64-bit word; the same counts as the plain loop.
__attribute__((target("avx2"), optimize("O3"))) void HistPlanarAvx2(const uint8_t* r, const uint8_t* g, const uint8_t* b, int64_t n, int shift,
                                                                  int bits, uint32_t* part, int64_t nb) {
  const __m128i sr = _mm_cvtsi32_si128(shift), sl = _mm_cvtsi32_si128(bits);
  const __m256i keep = _mm256_set1_epi8(static_cast<char>(0xFF >> shift)), zero = _mm256_setzero_si256();
  alignas(32) uint16_t idx[32];
  const uint64_t* words = reinterpret_cast<const uint64_t*>(idx);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i rv = _mm256_and_si256(_mm256_srl_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + i)), sr), keep);
    const __m256i gv = _mm256_and_si256(_mm256_srl_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + i)), sr), keep);
    const __m256i bv = _mm256_and_si256(_mm256_srl_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i)), sr), keep);
    const __m256i rg = _mm256_or_si256(_mm256_sll_epi16(rv, sl), gv);  // < 2^(2 bits) <= 256: stays in its byte
    const __m256i lo = _mm256_or_si256(_mm256_sll_epi16(_mm256_unpacklo_epi8(rg, zero), sl), _mm256_unpacklo_epi8(bv, zero));
    const __m256i hi = _mm256_or_si256(_mm256_sll_epi16(_mm256_unpackhi_epi8(rg, zero), sl), _mm256_unpackhi_epi8(bv, zero));
    _mm256_store_si256(reinterpret_cast<__m256i*>(idx), lo);
    _mm256_store_si256(reinterpret_cast<__m256i*>(idx + 16), hi);
    for (int k = 0; k < 8; k++) {
      const uint64_t w = words[k];
      part[w & 0xFFFF]++;
      part[nb + ((w >> 16) & 0xFFFF)]++;
      part[2 * nb + ((w >> 32) & 0xFFFF)]++;
      part[3 * nb + (w >> 48)]++;
    }
  }
  if (i < n) HistPixels<1>(r + i, g + i, b + i, n - i, shift, bits, part, nb, 4);
}
#endif

// images uint8 contiguous (N,3,H,W) (nhwc false) or (N,H,W,3) (nhwc true) -> int64 (N, nb)
at::Tensor RgbHistogramCounts(const at::Tensor& x, bool nhwc, int64_t shift) {
  TORCH_CHECK(x.device().is_cpu(), "rgbHistogramCounts: CPU tensors only");
  TORCH_CHECK(x.scalar_type() == at::kByte, "rgbHistogramCounts: uint8 images only");
  TORCH_CHECK(x.dim() == 4 && x.size(nhwc ? 3 : 1) == 3, "rgbHistogramCounts: images must be (N,3,H,W) or (N,H,W,3)");
  TORCH_CHECK(shift >= 0 && shift <= 8, "rgbHistogramCounts: shift must be 0..8");
  at::Tensor c = x.contiguous();
  const int bits = 8 - static_cast<int>(shift);
  const int64_t nb = int64_t{1} << (3 * bits);
  // Up to 16 bins per channel the partial histograms stay cache-sized: four interleaved
  // ones per job, and jobs of (image, pixel chunk) so that one image still uses every
  // thread, added into the output once all are done. Larger bin counts take one partial
  // and one job per image, added at once.
  const bool small = nb <= 4096;
  const int ways = small ? 4 : 1;
  const bool avx2 = HasAvx2();
  const int64_t n = c.size(0);
  const int64_t px = nhwc ? c.size(1) * c.size(2) : c.size(2) * c.size(3);
  at::Tensor out = at::zeros({n, nb}, at::kLong);
  const uint8_t* src = c.data_ptr<uint8_t>();
  int64_t* dst = out.data_ptr<int64_t>();
  const int64_t chunk = small ? int64_t{1} << 18 : std::max<int64_t>(px, 1);
  const int64_t per = (px + chunk - 1) / chunk;
  std::vector<std::vector<uint32_t>> parts(static_cast<size_t>(small ? n * per : 0));
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
#ifdef CQSEG_X86
      else if (avx2 && small) HistPlanarAvx2(base + p0, base + px + p0, base + 2 * px + p0, cnt, static_cast<int>(shift), bits, part.data(), nb);
#endif
      else HistPixels<1>(base + p0, base + px + p0, base + 2 * px + p0, cnt, static_cast<int>(shift), bits, part.data(), nb, ways);
      if (small) parts[static_cast<size_t>(job)] = std::move(part);
      else merge(dst + img * nb, part);
    }
  });
  for (size_t job = 0; job < parts.size(); job++) merge(dst + static_cast<int64_t>(job) / per * nb, parts[job]);
  return out;
}

}  // namespace

void RegisterHistogramOps(Ops& ops) {
    OP("rgbHistogramCounts", return RgbHistogramCounts(a.t(0), a.b(1), a.i64(2)););
}

}  // namespace cqseg
