// Integer dot products of int16 queries with int8 rows (int8Dot): the coarse pass of
// the exact LRIS search, which reads a quarter of the float32 bank's bytes.
#include "../common.h"
#include "kernels.h"

#include <ATen/Parallel.h>

namespace cqseg {

namespace {

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
// is added into the int64 total. One row at a time: the scan is bound by memory (blocking
// rows to share the loads of q was slower).
__attribute__((target("avx2"))) int64_t DotAvx2(const int16_t* q, const int8_t* c, int64_t d) {
  int64_t total = 0;
  const int64_t body = d - d % 16;
  for (int64_t k0 = 0; k0 < body; k0 += 128 * 16) {
    const int64_t end = std::min(body, k0 + 128 * 16);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    int64_t k = k0;
    for (; k + 32 <= end; k += 32) {
      // two rows ahead (a prefetch never faults past the end)
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
  if (HasAvx2()) dot = DotAvx2;
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

void RegisterInt8DotOps(Ops& ops) {
    OP("int8Dot", return Int8Dot(a.t(0), a.t(1), a.ot(2)););
}

}  // namespace cqseg
