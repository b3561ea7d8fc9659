// Op table, part for augment/: native ops that layer needs beyond the generic table.
// Keep each op one libtorch call (see common.h for the OP macro and Args).
//
// Seeded noise fields: each op draws one field per seed from its own CPU generator
// (at::make_generator<CPUGeneratorImpl>(seed)), stacks them and moves the result to
// the requested device. The global generators are never touched, and a seed gives the
// same numbers on every device (the draw happens on the CPU).
#include "../common.h"

#include <ATen/CPUGeneratorImpl.h>

namespace cqseg {

namespace {
// (shape of one field, seeds[], a, b, device?) -> (len(seeds), ...shape) float32
template <typename Fill>
at::Tensor SeededFields(Args& a, Fill fill) {
  std::vector<int64_t> shape = a.ints(0);
  std::vector<int64_t> seeds = a.ints(1);
  std::vector<int64_t> full{static_cast<int64_t>(seeds.size())};
  full.insert(full.end(), shape.begin(), shape.end());
  at::Tensor out = at::empty(full, at::TensorOptions().dtype(at::kFloat));
  for (size_t i = 0; i < seeds.size(); i++) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seeds[i]));
    at::Tensor slot = out.select(0, static_cast<int64_t>(i));
    fill(slot, a.f64(2), a.f64(3), gen);
  }
  if (a.none(4)) return out;
  return out.to(a.device(4));
}
}  // namespace

void RegisterAugmentOps(Ops& ops) {
  // uniform [lo, hi) per seed
  OP("augSeededUniform", return SeededFields(a, [](at::Tensor& t, double lo, double hi, at::Generator& g) {
       t.uniform_(lo, hi, g);
     }););
  // normal (mean, std) per seed
  OP("augSeededNormal", return SeededFields(a, [](at::Tensor& t, double mean, double std, at::Generator& g) {
       t.normal_(mean, std, g);
     }););
}

}  // namespace cqseg
