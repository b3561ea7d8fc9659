// Op table, part 1: creation, tensor info, elementwise math, comparisons,
// reductions, shape ops, in-place updates, random numbers and conversion.
// Each entry is one libtorch call; argument order follows torch.
#include "../common.h"

namespace cqseg {

namespace {
// A binary op whose second operand is a tensor or a number (torch's Scalar overloads).
template <typename TT, typename TS>
Result Binary(Args& a, TT tt, TS ts) {
  if (a.isTensor(1)) return tt(a.t(0), a.t(1));
  return ts(a.t(0), a.scalar(1));
}

at::OptionalIntArrayRef Dims(const std::vector<int64_t>& v, bool all) {
  if (all) return c10::nullopt;
  return at::IntArrayRef(v);
}
}  // namespace

#define BIN(NAME, FN) \
  OP(NAME, return Binary(a, [](const at::Tensor& x, const at::Tensor& y) { return FN(x, y); }, \
                         [](const at::Tensor& x, const at::Scalar& y) { return FN(x, y); });)
#define UNARY(NAME, FN) OP(NAME, return FN(a.t(0));)
#define INPLACE(NAME, CALL) OP(NAME, CALL; return None{};)

void RegisterMathOps(Ops& ops) {
  // ------------------------------------------------------------- creation
  // (shape, dtype?, device?)
  OP("empty", return at::empty(a.ints(0), a.options(1, 2)););
  OP("zeros", return at::zeros(a.ints(0), a.options(1, 2)););
  OP("ones", return at::ones(a.ints(0), a.options(1, 2)););
  OP("full", return at::full(a.ints(0), a.scalar(1), a.options(2, 3)););
  OP("arange", return at::arange(a.scalar(0), a.scalar(1), a.scalar(2), a.options(3, 4)););
  OP("linspace", return at::linspace(a.scalar(0), a.scalar(1), a.i64(2), a.options(3, 4)););
  OP("eye", return at::eye(a.i64(0), a.i64(1), a.options(2, 3)););
  OP("scalarTensor", return at::scalar_tensor(a.scalar(0), a.options(1, 2)););
  OP("zerosLike", return at::zeros_like(a.t(0)););
  OP("onesLike", return at::ones_like(a.t(0)););
  OP("fullLike", return at::full_like(a.t(0), a.scalar(1)););
  OP("emptyLike", return at::empty_like(a.t(0)););
  OP("randLike", return at::rand_like(a.t(0)););
  OP("randnLike", return at::randn_like(a.t(0)););

  // ------------------------------------------------------------------ info
  OP("shape", return a.t(0).sizes().vec(););
  OP("strides", return a.t(0).strides().vec(););
  OP("dtype", return DtypeToCode(a.t(0).scalar_type()););
  OP("device", return a.t(0).device().str(););
  OP("numel", return static_cast<int64_t>(a.t(0).numel()););
  OP("isContiguous", return a.t(0).is_contiguous(););
  OP("item", return a.t(0).item<double>(););
  OP("clone", return a.t(0).clone(););

  // ------------------------------------------------------------ elementwise
  OP("add", if (a.isTensor(1)) return at::add(a.t(0), a.t(1), a.none(2) ? at::Scalar(1) : a.scalar(2));
     return at::add(a.t(0), a.scalar(1), a.none(2) ? at::Scalar(1) : a.scalar(2)););
  OP("sub", if (a.isTensor(1)) return at::sub(a.t(0), a.t(1), a.none(2) ? at::Scalar(1) : a.scalar(2));
     return at::sub(a.t(0), a.scalar(1), a.none(2) ? at::Scalar(1) : a.scalar(2)););
  BIN("mul", at::mul);
  OP("div", if (a.none(2)) { if (a.isTensor(1)) return at::div(a.t(0), a.t(1)); return at::div(a.t(0), a.scalar(1)); }
     if (a.isTensor(1)) return at::div(a.t(0), a.t(1), a.str(2));
     return at::div(a.t(0), a.scalar(1), a.str(2)););
  BIN("pow", at::pow);
  BIN("remainder", at::remainder);
  BIN("eq", at::eq);
  BIN("ne", at::ne);
  BIN("lt", at::lt);
  BIN("le", at::le);
  BIN("gt", at::gt);
  BIN("ge", at::ge);
  OP("rpow", return at::pow(a.scalar(1), a.t(0)););  // number ** tensor
  OP("maximum", return at::maximum(a.t(0), a.t(1)););
  OP("minimum", return at::minimum(a.t(0), a.t(1)););
  OP("atan2", return at::atan2(a.t(0), a.t(1)););
  OP("logicalAnd", return at::logical_and(a.t(0), a.t(1)););
  OP("logicalOr", return at::logical_or(a.t(0), a.t(1)););
  OP("logicalXor", return at::logical_xor(a.t(0), a.t(1)););
  UNARY("logicalNot", at::logical_not);
  UNARY("neg", at::neg);
  UNARY("exp", at::exp);
  UNARY("log", at::log);
  UNARY("log1p", at::log1p);
  UNARY("log2", at::log2);
  UNARY("sqrt", at::sqrt);
  UNARY("rsqrt", at::rsqrt);
  UNARY("abs", at::abs);
  UNARY("sign", at::sign);
  UNARY("sigmoid", at::sigmoid);
  UNARY("tanh", at::tanh);
  UNARY("relu", at::relu);
  UNARY("silu", at::silu);
  UNARY("erf", at::erf);
  UNARY("sin", at::sin);
  UNARY("cos", at::cos);
  UNARY("floor", at::floor);
  UNARY("ceil", at::ceil);
  UNARY("round", at::round);
  UNARY("trunc", at::trunc);
  UNARY("reciprocal", at::reciprocal);
  UNARY("square", at::square);
  UNARY("isnan", at::isnan);
  UNARY("isfinite", at::isfinite);
  OP("gelu", return at::gelu(a.t(0), a.none(1) ? "none" : a.str(1)););
  OP("leakyRelu", return at::leaky_relu(a.t(0), a.scalar(1)););
  OP("hardtanh", return at::hardtanh(a.t(0), a.scalar(1), a.scalar(2)););
  OP("clamp", return at::clamp(a.t(0), a.none(1) ? c10::optional<at::Scalar>() : a.scalar(1),
                                  a.none(2) ? c10::optional<at::Scalar>() : a.scalar(2)););
  OP("clampTensor", return at::clamp(a.t(0), a.optT(1), a.optT(2)););
  OP("where", if (a.isTensor(1) && a.isTensor(2)) return at::where(a.t(0), a.t(1), a.t(2));
     if (a.isTensor(1)) return at::where(a.t(0), a.t(1), a.scalar(2));
     if (a.isTensor(2)) return at::where(a.t(0), a.scalar(1), a.t(2));
     return at::where(a.t(0), a.scalar(1), a.scalar(2)););
  OP("lerp", if (a.isTensor(2)) return at::lerp(a.t(0), a.t(1), a.t(2)); return at::lerp(a.t(0), a.t(1), a.scalar(2)););
  OP("addcmul", return at::addcmul(a.t(0), a.t(1), a.t(2), a.scalar(3)););
  OP("addcdiv", return at::addcdiv(a.t(0), a.t(1), a.t(2), a.scalar(3)););
  OP("nanToNum", return at::nan_to_num(a.t(0), a.optF64(1), a.optF64(2), a.optF64(3)););
  // (t, shift): x >> shift for integer tensors (histogram bins)
  OP("bitwiseRightShift", return at::bitwise_right_shift(a.t(0), a.scalar(1)););

  // ------------------------------------------------------------ reductions
  // (t, dims | null for all, keepdim, dtype?)
  OP("sum", if (a.none(1)) return at::sum(a.t(0), a.optDtype(3));
     return at::sum(a.t(0), a.ints(1), a.b(2), a.optDtype(3)););
  OP("mean", if (a.none(1)) return at::mean(a.t(0), a.optDtype(3));
     return at::mean(a.t(0), a.ints(1), a.b(2), a.optDtype(3)););
  OP("prod", if (a.none(1)) return at::prod(a.t(0), a.optDtype(3));
     return at::prod(a.t(0), a.i64(1), a.b(2), a.optDtype(3)););
  OP("amax", return at::amax(a.t(0), a.none(1) ? std::vector<int64_t>{} : a.ints(1), a.b(2)););
  OP("amin", return at::amin(a.t(0), a.none(1) ? std::vector<int64_t>{} : a.ints(1), a.b(2)););
  OP("maxAll", return at::max(a.t(0)););
  OP("minAll", return at::min(a.t(0)););
  OP("maxDim", auto r = at::max(a.t(0), a.i64(1), a.b(2)); return std::vector<at::Tensor>{std::get<0>(r), std::get<1>(r)};);
  OP("minDim", auto r = at::min(a.t(0), a.i64(1), a.b(2)); return std::vector<at::Tensor>{std::get<0>(r), std::get<1>(r)};);
  OP("argmax", return at::argmax(a.t(0), a.optI64(1), a.none(2) ? false : a.b(2)););
  OP("argmin", return at::argmin(a.t(0), a.optI64(1), a.none(2) ? false : a.b(2)););
  // (t, dims | null, unbiased, keepdim)
  OP("var", { auto d = a.none(1) ? std::vector<int64_t>{} : a.ints(1);
              return at::var(a.t(0), Dims(d, a.none(1)), a.b(2), a.b(3)); });
  OP("std", { auto d = a.none(1) ? std::vector<int64_t>{} : a.ints(1);
              return at::std(a.t(0), Dims(d, a.none(1)), a.b(2), a.b(3)); });
  OP("all", if (a.none(1)) return at::all(a.t(0)); return at::all(a.t(0), a.i64(1), a.b(2)););
  OP("any", if (a.none(1)) return at::any(a.t(0)); return at::any(a.t(0), a.i64(1), a.b(2)););
  OP("cumsum", return at::cumsum(a.t(0), a.i64(1), a.optDtype(2)););
  OP("logsumexp", return at::logsumexp(a.t(0), a.ints(1), a.b(2)););
  OP("norm", return at::norm(a.t(0), a.scalar(1), a.ints(2), a.b(3)););
  OP("topk", auto r = at::topk(a.t(0), a.i64(1), a.i64(2), a.b(3), true);
     return std::vector<at::Tensor>{std::get<0>(r), std::get<1>(r)};);
  OP("sort", auto r = at::sort(a.t(0), a.i64(1), a.b(2)); return std::vector<at::Tensor>{std::get<0>(r), std::get<1>(r)};);
  OP("bincount", return at::bincount(a.t(0), a.optT(1), a.i64(2)););
  OP("countNonzero", return at::count_nonzero(a.t(0), a.ints(1)););

  // ------------------------------------------------------------ shape ops
  OP("reshape", return at::reshape(a.t(0), a.ints(1)););
  OP("view", return a.t(0).view(a.ints(1)););
  OP("flatten", return at::flatten(a.t(0), a.i64(1), a.i64(2)););
  OP("permute", return a.t(0).permute(a.ints(1)););
  OP("transpose", return at::transpose(a.t(0), a.i64(1), a.i64(2)););
  OP("squeeze", if (a.none(1)) return at::squeeze(a.t(0)); return at::squeeze(a.t(0), a.i64(1)););
  OP("unsqueeze", return at::unsqueeze(a.t(0), a.i64(1)););
  OP("cat", return at::cat(a.tensors(0), a.i64(1)););
  OP("stack", return at::stack(a.tensors(0), a.i64(1)););
  OP("narrow", return at::narrow(a.t(0), a.i64(1), a.i64(2), a.i64(3)););
  OP("slice", return at::slice(a.t(0), a.i64(1), a.optI64(2), a.optI64(3), a.i64(4)););
  OP("select", return at::select(a.t(0), a.i64(1), a.i64(2)););
  OP("indexSelect", return at::index_select(a.t(0), a.i64(1), a.t(2)););
  OP("gather", return at::gather(a.t(0), a.i64(1), a.t(2)););
  OP("scatter", if (a.isTensor(3)) return at::scatter(a.t(0), a.i64(1), a.t(2), a.t(3));
     return at::scatter(a.t(0), a.i64(1), a.t(2), a.scalar(3)););
  OP("scatterAdd", return at::scatter_add(a.t(0), a.i64(1), a.t(2), a.t(3)););
  OP("maskedFill", if (a.isTensor(2)) return at::masked_fill(a.t(0), a.t(1), a.t(2));
     return at::masked_fill(a.t(0), a.t(1), a.scalar(2)););
  OP("maskedSelect", return at::masked_select(a.t(0), a.t(1)););
  OP("nonzero", return at::nonzero(a.t(0)););
  OP("flip", return at::flip(a.t(0), a.ints(1)););
  OP("roll", return at::roll(a.t(0), a.ints(1), a.ints(2)););
  OP("expand", return a.t(0).expand(a.ints(1)););
  OP("repeat", return a.t(0).repeat(a.ints(1)););
  OP("contiguous", return a.t(0).contiguous(););
  // the NHWC layout of a 4-D tensor (torch.channels_last), same shape and values
  OP("channelsLast", return a.t(0).contiguous(at::MemoryFormat::ChannelsLast););
  // (t, pads (last dim first, as torch), mode 'constant'|'reflect'|'replicate'|'circular', value?)
  OP("pad", return at::pad(a.t(0), a.ints(1), a.str(2), a.optF64(3)););
  OP("split", return at::split(a.t(0), a.i64(1), a.i64(2)););
  OP("splitWithSizes", return at::split_with_sizes(a.t(0), a.ints(1), a.i64(2)););
  OP("chunk", return at::chunk(a.t(0), a.i64(1), a.i64(2)););
  OP("tril", return at::tril(a.t(0), a.i64(1)););
  OP("triu", return at::triu(a.t(0), a.i64(1)););
  OP("indexPut", return at::index_put(a.t(0), c10::List<c10::optional<at::Tensor>>({c10::optional<at::Tensor>(a.t(1))}), a.t(2), a.b(3)););
  OP("indexTensor", return at::index(a.t(0), c10::List<c10::optional<at::Tensor>>({c10::optional<at::Tensor>(a.t(1))})););

  // --------------------------------------------- in-place (use under noGrad)
  INPLACE("add_", if (a.isTensor(1)) a.t(0).add_(a.t(1), a.none(2) ? at::Scalar(1) : a.scalar(2));
          else a.t(0).add_(a.scalar(1), a.none(2) ? at::Scalar(1) : a.scalar(2)));
  INPLACE("sub_", if (a.isTensor(1)) a.t(0).sub_(a.t(1), a.none(2) ? at::Scalar(1) : a.scalar(2));
          else a.t(0).sub_(a.scalar(1), a.none(2) ? at::Scalar(1) : a.scalar(2)));
  INPLACE("mul_", if (a.isTensor(1)) a.t(0).mul_(a.t(1)); else a.t(0).mul_(a.scalar(1)));
  INPLACE("div_", if (a.isTensor(1)) a.t(0).div_(a.t(1)); else a.t(0).div_(a.scalar(1)));
  INPLACE("copy_", a.t(0).copy_(a.t(1)));
  INPLACE("fill_", a.t(0).fill_(a.scalar(1)));
  INPLACE("zero_", a.t(0).zero_());
  INPLACE("clamp_", a.t(0).clamp_(a.none(1) ? c10::optional<at::Scalar>() : a.scalar(1),
                                   a.none(2) ? c10::optional<at::Scalar>() : a.scalar(2)));
  INPLACE("addcmul_", a.t(0).addcmul_(a.t(1), a.t(2), a.scalar(3)));
  INPLACE("addcdiv_", a.t(0).addcdiv_(a.t(1), a.t(2), a.scalar(3)));
  INPLACE("lerp_", if (a.isTensor(2)) a.t(0).lerp_(a.t(1), a.t(2)); else a.t(0).lerp_(a.t(1), a.scalar(2)));
  INPLACE("maskedFill_", a.t(0).masked_fill_(a.t(1), a.scalar(2)));
  INPLACE("normal_", a.t(0).normal_(a.f64(1), a.f64(2)));
  INPLACE("uniform_", a.t(0).uniform_(a.f64(1), a.f64(2)));
  INPLACE("bernoulli_", a.t(0).bernoulli_(a.f64(1)));

  // ----------------------------------------------------------------- random
  OP("manualSeed", at::manual_seed(static_cast<uint64_t>(a.i64(0))); return None{};);
  OP("rand", return at::rand(a.ints(0), a.options(1, 2)););
  OP("randn", return at::randn(a.ints(0), a.options(1, 2)););
  OP("randint", return at::randint(a.i64(0), a.i64(1), a.ints(2), a.options(3, 4)););
  OP("randperm", return at::randperm(a.i64(0), a.options(1, 2)););
  OP("bernoulli", if (a.none(1)) return at::bernoulli(a.t(0)); return at::bernoulli(a.t(0), a.f64(1)););
  OP("multinomial", return at::multinomial(a.t(0), a.i64(1), a.b(2)););
  OP("getRngState", {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    return gen.get_state();
  });
  OP("setRngState", {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(a.t(0));
    return None{};
  });

  // ------------------------------------------------------------- conversion
  // (t, dtype?, device?, copy)
  OP("to", {
    at::Tensor& t = a.t(0);
    at::ScalarType dt = a.none(1) ? t.scalar_type() : a.dtype(1);
    at::Device dev = a.none(2) ? t.device() : a.device(2);
    return t.to(dev, dt, false, a.none(3) ? false : a.b(3));
  });
}

}  // namespace cqseg
