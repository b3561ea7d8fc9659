// cqseg native addon: tensor handles, argument conversion, error mapping and the
// table-driven op dispatcher. Ops themselves live in ops_*.cc, one line each.
#include "common.h"
#include "kernels/kernels.h"

#include <malloc.h>

#include <cmath>
#include <cstring>
#include <mutex>

namespace cqseg {

namespace {
Ops& OpTable() {
  static Ops ops;
  static std::once_flag once;
  std::call_once(once, [] {
    RegisterMathOps(ops);
    RegisterNnOps(ops);
    RegisterAugmentOps(ops);
    RegisterSerializeOps(ops);
    RegisterDistOps(ops);
    RegisterBatchNormActOps(ops);
    RegisterUpCatConvOps(ops);
    RegisterScaledConvOps(ops);
    RegisterWinogradOps(ops);
    RegisterDepthwiseOps(ops);
    RegisterHistogramOps(ops);
    RegisterInt8DotOps(ops);
    RegisterCpuOps(ops);
    RegisterAllocatorOps(ops);
  });
  return ops;
}

int64_t StorageBytes(const at::Tensor& t) {
  if (!t.defined()) return 0;
  return static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}
}  // namespace

AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

void AddonData::Link(TensorHandle* h) {
  h->prev_ = nullptr;
  h->next_ = liveHead;
  if (liveHead != nullptr) liveHead->prev_ = h;
  liveHead = h;
  liveCount++;
}

void AddonData::Unlink(TensorHandle* h) {
  if (h->prev_ != nullptr) h->prev_->next_ = h->next_;
  else liveHead = h->next_;
  if (h->next_ != nullptr) h->next_->prev_ = h->prev_;
  h->prev_ = h->next_ = nullptr;
  liveCount--;
}

void AddonData::ReportExternal(Napi::Env env, int64_t delta) {
  pendingExternal += delta;
  if (pendingExternal >= (1 << 20) || pendingExternal <= -(1 << 20)) {
    Napi::MemoryManagement::AdjustExternalMemory(env, pendingExternal);
    pendingExternal = 0;
  }
}

// ---------------------------------------------------------------- TensorHandle

Napi::Function TensorHandle::Define(Napi::Env env) {
  return DefineClass(env, "NativeTensor",
                     {InstanceMethod("dispose", &TensorHandle::Dispose),
                      InstanceMethod("isDisposed", &TensorHandle::IsDisposed)});
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {
  data_ = &Data(info.Env());
}

TensorHandle::~TensorHandle() { Release(Env(), true); }

void TensorHandle::Attach(Napi::Env env, at::Tensor t) {
  tensor_ = std::move(t);
  bytes_ = StorageBytes(tensor_);
  alive_ = true;
  data_->Link(this);
  data_->liveBytes += bytes_;
  data_->created++;
  if (bytes_ > 0) data_->ReportExternal(env, bytes_);
}

void TensorHandle::Release(Napi::Env env, bool adjustV8) {
  if (!alive_) return;
  alive_ = false;
  tensor_ = at::Tensor();
  if (data_ != nullptr) {
    data_->Unlink(this);
    data_->liveBytes -= bytes_;
    if (adjustV8 && bytes_ > 0) data_->ReportExternal(env, -bytes_);
  }
  bytes_ = 0;
}

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  Release(info.Env(), true);
  return info.Env().Undefined();
}

Napi::Value TensorHandle::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !alive_);
}

Napi::Object Wrap(Napi::Env env, at::Tensor t) {
  Napi::Object obj = Data(env).handleCtor.New({});
  TensorHandle::Unwrap(obj)->Attach(env, std::move(t));
  return obj;
}

// ------------------------------------------------------------------------ dtypes

static const at::ScalarType kDtypes[] = {
    at::kFloat, at::kHalf, at::kBFloat16, at::kLong, at::kInt, at::kByte, at::kBool, at::kDouble, at::kChar, at::kShort,
};

at::ScalarType DtypeFromCode(int64_t code) {
  if (code < 0 || code >= static_cast<int64_t>(sizeof(kDtypes) / sizeof(kDtypes[0]))) {
    throw std::invalid_argument("unknown dtype code " + std::to_string(code));
  }
  return kDtypes[code];
}

int64_t DtypeToCode(at::ScalarType t) {
  for (size_t i = 0; i < sizeof(kDtypes) / sizeof(kDtypes[0]); i++) {
    if (kDtypes[i] == t) return static_cast<int64_t>(i);
  }
  throw std::invalid_argument(std::string("unsupported dtype ") + c10::toString(t));
}

// -------------------------------------------------------------------------- Args

namespace {
constexpr uint32_t Bit(ArgKind k) { return 1u << static_cast<uint32_t>(k); }
using K = ArgKind;
constexpr uint32_t kOptional = Bit(K::kTensorOpt) | Bit(K::kScalarOpt) | Bit(K::kIntOpt) | Bit(K::kFloatOpt) | Bit(K::kBoolOpt) | Bit(K::kStringOpt) |
                               Bit(K::kIntsOpt) | Bit(K::kDtypeOpt) | Bit(K::kDeviceOpt);
const char* const kKindNames[] = {"T", "T?", "TS", "S", "S?", "i", "i?", "f", "f?", "b", "b?", "s", "s?", "ints", "ints?", "f64s", "Ts", "dtype", "dtype?", "device?"};
}  // namespace

ArgKind ArgKindOf(const std::string& s) {
  for (size_t k = 0; k < sizeof(kKindNames) / sizeof(kKindNames[0]); k++) {
    if (s == kKindNames[k]) return static_cast<ArgKind>(k);
  }
  throw std::invalid_argument("unknown argument kind '" + s + "'");
}

void Args::fail(size_t i, const std::string& what) const {
  throw std::invalid_argument(std::string("argument ") + std::to_string(i) + " of native op '" + op_ + "': " + what);
}

void Args::expect(size_t i, uint32_t allowed, const char* accessor) const {
  if (i >= kinds_->size()) {
    throw std::logic_error(std::string("native op '") + op_ + "' reads argument " + std::to_string(i) + " (" + accessor +
                           "), which src/tensor/manifest.ts does not declare");
  }
  const ArgKind k = (*kinds_)[i];
  if ((allowed & Bit(k)) == 0) {
    throw std::logic_error(std::string("native op '") + op_ + "' reads argument " + std::to_string(i) + " as " + accessor +
                           ", but src/tensor/manifest.ts declares it '" + kKindNames[static_cast<size_t>(k)] + "'");
  }
}

bool Args::none(size_t i) const {
  expect(i, kOptional, "none");
  return i >= size() || at(i).IsUndefined() || at(i).IsNull();
}

bool Args::isTensor(size_t i) const {
  expect(i, Bit(K::kTensorOrScalar) | Bit(K::kTensorOpt), "isTensor");
  if (i >= size() || !at(i).IsObject()) return false;
  return at(i).As<Napi::Object>().InstanceOf(Data(env()).handleCtor.Value());
}

at::Tensor& Args::rawT(size_t i) const {
  if (i >= size() || !at(i).IsObject() || !at(i).As<Napi::Object>().InstanceOf(Data(env()).handleCtor.Value())) fail(i, "expected a tensor");
  TensorHandle* h = TensorHandle::Unwrap(at(i).As<Napi::Object>());
  if (h == nullptr) fail(i, "not a cqseg tensor handle");
  if (!h->alive()) throw std::invalid_argument("Tensor is disposed");
  return h->tensor();
}

at::Tensor& Args::t(size_t i) const {
  expect(i, Bit(K::kTensor) | Bit(K::kTensorOpt) | Bit(K::kTensorOrScalar), "a tensor");
  return rawT(i);
}

at::Tensor Args::ot(size_t i) const {
  expect(i, Bit(K::kTensorOpt), "an optional tensor");
  return i >= size() || at(i).IsUndefined() || at(i).IsNull() ? at::Tensor() : rawT(i);
}

c10::optional<at::Tensor> Args::optT(size_t i) const {
  const at::Tensor t = ot(i);
  if (!t.defined()) return c10::nullopt;
  return t;
}

at::Scalar Args::scalar(size_t i) const {
  expect(i, Bit(K::kScalar) | Bit(K::kScalarOpt) | Bit(K::kTensorOrScalar), "a scalar");
  if (i >= size()) fail(i, "expected a number");
  Napi::Value v = at(i);
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (!v.IsNumber()) fail(i, "expected a number");
  double d = v.As<Napi::Number>().DoubleValue();
  // JS has one number type: integral values become integer Scalars (as Python's 1),
  // so in-place updates of integer tensors work; others are double Scalars (1.5).
  if (std::nearbyint(d) == d && std::fabs(d) < 9007199254740992.0) return at::Scalar(static_cast<int64_t>(d));
  return at::Scalar(d);
}

int64_t Args::rawI64(size_t i) const {
  if (i >= size() || !at(i).IsNumber()) fail(i, "expected an integer");
  return at(i).As<Napi::Number>().Int64Value();
}

int64_t Args::i64(size_t i) const {
  expect(i, Bit(K::kInt) | Bit(K::kIntOpt), "an integer");
  return rawI64(i);
}

c10::optional<int64_t> Args::optI64(size_t i) const {
  if (none(i)) return c10::nullopt;
  return i64(i);
}

double Args::f64(size_t i) const {
  expect(i, Bit(K::kFloat) | Bit(K::kFloatOpt), "a number");
  if (i >= size() || !at(i).IsNumber()) fail(i, "expected a number");
  return at(i).As<Napi::Number>().DoubleValue();
}

c10::optional<double> Args::optF64(size_t i) const {
  if (none(i)) return c10::nullopt;
  return f64(i);
}

bool Args::b(size_t i) const {
  expect(i, Bit(K::kBool) | Bit(K::kBoolOpt), "a boolean");
  if (i >= size() || !at(i).IsBoolean()) fail(i, "expected a boolean");
  return at(i).As<Napi::Boolean>().Value();
}

std::string Args::rawStr(size_t i) const {
  if (i >= size() || !at(i).IsString()) fail(i, "expected a string");
  return at(i).As<Napi::String>().Utf8Value();
}

std::string Args::str(size_t i) const {
  expect(i, Bit(K::kString) | Bit(K::kStringOpt), "a string");
  return rawStr(i);
}

std::vector<int64_t> Args::ints(size_t i) const {
  expect(i, Bit(K::kInts) | Bit(K::kIntsOpt), "an array of integers");
  if (i >= size() || !at(i).IsArray()) fail(i, "expected an array of integers");
  Napi::Array arr = at(i).As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr.Get(k);
    if (!v.IsNumber()) fail(i, "expected an array of integers");
    out[k] = v.As<Napi::Number>().Int64Value();
  }
  return out;
}

std::vector<double> Args::f64s(size_t i) const {
  expect(i, Bit(K::kFloats), "an array of numbers");
  if (i >= size() || !at(i).IsArray()) fail(i, "expected an array of numbers");
  Napi::Array arr = at(i).As<Napi::Array>();
  std::vector<double> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr.Get(k);
    if (!v.IsNumber()) fail(i, "expected an array of numbers");
    out[k] = v.As<Napi::Number>().DoubleValue();
  }
  return out;
}

std::vector<at::Tensor> Args::tensors(size_t i) const {
  expect(i, Bit(K::kTensors), "an array of tensors");
  if (i >= size() || !at(i).IsArray()) fail(i, "expected an array of tensors");
  Napi::Array arr = at(i).As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  Napi::Function ctor = Data(env()).handleCtor.Value();
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr.Get(k);
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ctor)) fail(i, "expected an array of tensors");
    TensorHandle* h = TensorHandle::Unwrap(v.As<Napi::Object>());
    if (h == nullptr || !h->alive()) throw std::invalid_argument("Tensor is disposed");
    out.push_back(h->tensor());
  }
  return out;
}

at::ScalarType Args::dtype(size_t i) const {
  expect(i, Bit(K::kDtype) | Bit(K::kDtypeOpt), "a dtype");
  return DtypeFromCode(rawI64(i));
}

c10::optional<at::ScalarType> Args::optDtype(size_t i) const {
  if (none(i)) return c10::nullopt;
  return dtype(i);
}

at::Device Args::device(size_t i) const {
  if (none(i)) return at::Device(at::kCPU);
  expect(i, Bit(K::kDeviceOpt), "a device");
  return at::Device(rawStr(i));
}

at::TensorOptions Args::options(size_t dtypeIdx, size_t deviceIdx) const {
  at::TensorOptions o = at::TensorOptions().device(device(deviceIdx));
  if (!none(dtypeIdx)) o = o.dtype(dtype(dtypeIdx));
  return o;
}

// ---------------------------------------------------------------------- results

namespace {

Napi::Value ToJs(Napi::Env env, Result&& r) {
  switch (r.index()) {
    case 0: return env.Undefined();
    case 1: {
      at::Tensor& t = std::get<at::Tensor>(r);
      if (!t.defined()) return env.Undefined();
      return Wrap(env, std::move(t));
    }
    case 2: {
      auto& v = std::get<std::vector<at::Tensor>>(r);
      Napi::Array arr = Napi::Array::New(env, v.size());
      for (size_t k = 0; k < v.size(); k++) arr.Set(static_cast<uint32_t>(k), Wrap(env, std::move(v[k])));
      return arr;
    }
    case 3: return Napi::Number::New(env, std::get<double>(r));
    case 4: return Napi::Number::New(env, static_cast<double>(std::get<int64_t>(r)));
    case 5: return Napi::Boolean::New(env, std::get<bool>(r));
    case 6: {
      auto& v = std::get<std::vector<int64_t>>(r);
      Napi::Array arr = Napi::Array::New(env, v.size());
      for (size_t k = 0; k < v.size(); k++) arr.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(v[k])));
      return arr;
    }
    case 7: return Napi::String::New(env, std::get<std::string>(r));
    default: {
      auto& nt = std::get<NamedTensors>(r);
      Napi::Object o = Napi::Object::New(env);
      Napi::Array names = Napi::Array::New(env, nt.names.size());
      Napi::Array tensors = Napi::Array::New(env, nt.tensors.size());
      Napi::Array others = Napi::Array::New(env, nt.others.size());
      for (size_t k = 0; k < nt.names.size(); k++) names.Set(static_cast<uint32_t>(k), Napi::String::New(env, nt.names[k]));
      for (size_t k = 0; k < nt.tensors.size(); k++) tensors.Set(static_cast<uint32_t>(k), Wrap(env, std::move(nt.tensors[k])));
      for (size_t k = 0; k < nt.others.size(); k++) others.Set(static_cast<uint32_t>(k), Napi::String::New(env, nt.others[k]));
      o.Set("names", names);
      o.Set("tensors", tensors);
      o.Set("others", others);
      return o;
    }
  }
}

[[noreturn]] void ThrowJs(Napi::Env env, const std::string& msg, const char* code) {
  AddonData& d = Data(env);
  Napi::Object err;
  if (!d.errorCtor.IsEmpty()) {
    err = d.errorCtor.New({Napi::String::New(env, msg)});
  } else {
    err = Napi::Error::New(env, msg).Value();
  }
  err.Set("code", Napi::String::New(env, code));
  throw Napi::Error(env, err);
}

// Runs fn, turning every C++ exception into the TS-defined error class.
template <typename F>
Napi::Value Guard(Napi::Env env, F&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::OutOfMemoryError& e) {
    ThrowJs(env, e.what_without_backtrace(), "ERR_OUT_OF_MEMORY");
  } catch (const c10::Error& e) {
    // libtorch 1.13's own CPU allocator reports failure as a plain c10::Error: its message is the only sign
    const std::string msg = e.what_without_backtrace();
    const bool oom = msg.find("DefaultCPUAllocator: can't allocate memory") != std::string::npos;
    ThrowJs(env, msg, oom ? "ERR_OUT_OF_MEMORY" : "ERR_TORCH");
  } catch (const std::invalid_argument& e) {
    ThrowJs(env, e.what(), "ERR_INVALID_ARG");
  } catch (const std::logic_error& e) {
    ThrowJs(env, e.what(), "ERR_NATIVE");
  } catch (const std::bad_alloc&) {
    ThrowJs(env, "out of memory", "ERR_OUT_OF_MEMORY");
  } catch (const std::exception& e) {
    ThrowJs(env, e.what(), "ERR_NATIVE");
  }
}

// call(opId, ...args) on one table: the op's manifest entry bounds its arguments.
Napi::Value CallOn(std::vector<OpDef>& ops, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsNumber()) throw std::invalid_argument("call(opId, ...args): opId must be a number");
    int64_t id = info[0].As<Napi::Number>().Int64Value();
    if (id < 0 || id >= static_cast<int64_t>(ops.size())) throw std::invalid_argument("unknown op id " + std::to_string(id));
    const OpDef& op = ops[id];
    if (!op.bound) throw std::logic_error(std::string("native op '") + op.name + "' is called before src/tensor/manifest.ts was bound");
    if (info.Length() - 1 > op.kinds.size()) {
      throw std::invalid_argument(std::string("native op '") + op.name + "' takes at most " + std::to_string(op.kinds.size()) +
                                  " arguments (src/tensor/manifest.ts), got " + std::to_string(info.Length() - 1));
    }
    Args args(info, op);
    return ToJs(env, op.fn(args));
  });
}

Napi::Value Call(const Napi::CallbackInfo& info) { return CallOn(OpTable().production, info); }
Napi::Value TestingCall(const Napi::CallbackInfo& info) { return CallOn(OpTable().testing, info); }

// bind([[name, [kind, ...]], ...]) -> ids, in the manifest's order. The manifest and the
// table must hold the same ops: an op the manifest names and the table lacks is a stale
// build; one the table has and the manifest lacks is undeclared. Both fail, naming them.
Napi::Value BindOn(std::vector<OpDef>& ops, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsArray()) throw std::invalid_argument("bind(manifest): expected an array of [name, kinds]");
    Napi::Array manifest = info[0].As<Napi::Array>();
    std::vector<int64_t> ids;
    std::vector<bool> seen(ops.size(), false);
    std::string missing, undeclared;
    for (uint32_t k = 0; k < manifest.Length(); k++) {
      Napi::Array entry = manifest.Get(k).As<Napi::Array>();
      const std::string name = entry.Get(0u).As<Napi::String>().Utf8Value();
      Napi::Array kinds = entry.Get(1u).As<Napi::Array>();
      int64_t id = -1;
      for (size_t j = 0; j < ops.size(); j++) {
        if (name == ops[j].name) id = static_cast<int64_t>(j);
      }
      ids.push_back(id);
      if (id < 0) {
        missing += (missing.empty() ? "" : ", ") + name;
        continue;
      }
      seen[id] = true;
      OpDef& op = ops[id];
      op.kinds.clear();
      for (uint32_t q = 0; q < kinds.Length(); q++) op.kinds.push_back(ArgKindOf(kinds.Get(q).As<Napi::String>().Utf8Value()));
      op.bound = true;
    }
    for (size_t j = 0; j < ops.size(); j++) {
      if (!seen[j]) undeclared += (undeclared.empty() ? "" : ", ") + std::string(ops[j].name);
    }
    if (!missing.empty()) throw std::invalid_argument("the addon lacks ops that src/tensor/manifest.ts declares (a stale build): " + missing);
    if (!undeclared.empty()) throw std::invalid_argument("the addon has ops that src/tensor/manifest.ts does not declare: " + undeclared);
    Napi::Array out = Napi::Array::New(env, ids.size());
    for (size_t k = 0; k < ids.size(); k++) out.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(ids[k])));
    return out;
  });
}

Napi::Value Bind(const Napi::CallbackInfo& info) { return BindOn(OpTable().production, info); }
Napi::Value TestingBind(const Napi::CallbackInfo& info) { return BindOn(OpTable().testing, info); }

// fromBuffer(view: ArrayBufferView, shape: number[], dtypeCode, device?) -> handle (a copy)
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (info.Length() < 3 || !info[0].IsTypedArray()) throw std::invalid_argument("fromBuffer: expected a TypedArray or Buffer");
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    Napi::ArrayBuffer ab = ta.ArrayBuffer();
    const uint8_t* src = static_cast<const uint8_t*>(ab.Data()) + ta.ByteOffset();
    size_t nbytes = ta.ByteLength();
    Napi::Array shapeArr = info[1].As<Napi::Array>();
    std::vector<int64_t> shape(shapeArr.Length());
    for (uint32_t k = 0; k < shapeArr.Length(); k++) shape[k] = shapeArr.Get(k).As<Napi::Number>().Int64Value();
    at::ScalarType dt = DtypeFromCode(info[2].As<Napi::Number>().Int64Value());
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dt));
    size_t want = static_cast<size_t>(t.numel()) * t.element_size();
    if (want != nbytes) {
      throw std::invalid_argument("fromBuffer: shape and dtype need " + std::to_string(want) + " bytes, the buffer has " +
                                  std::to_string(nbytes));
    }
    if (want > 0) std::memcpy(t.data_ptr(), src, want);
    if (info.Length() > 3 && info[3].IsString()) {
      at::Device dev(info[3].As<Napi::String>().Utf8Value());
      if (!dev.is_cpu()) t = t.to(dev);
    }
    return Wrap(env, std::move(t));
  });
}

// toBuffer(handle) -> ArrayBuffer holding a contiguous CPU copy of the data
Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject() ||
        !info[0].As<Napi::Object>().InstanceOf(Data(env).handleCtor.Value())) {
      throw std::invalid_argument("toBuffer: expected a tensor");
    }
    TensorHandle* h = TensorHandle::Unwrap(info[0].As<Napi::Object>());
    if (h == nullptr || !h->alive()) throw std::invalid_argument("Tensor is disposed");
    at::Tensor t = h->tensor().detach().to(at::kCPU).contiguous();
    size_t n = static_cast<size_t>(t.numel()) * t.element_size();
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, n);
    if (n > 0) std::memcpy(ab.Data(), t.data_ptr(), n);
    return ab;
  });
}

Napi::Value Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData& d = Data(env);
  Napi::Object o = Napi::Object::New(env);
  o.Set("liveTensors", Napi::Number::New(env, static_cast<double>(d.liveCount)));
  o.Set("liveBytes", Napi::Number::New(env, static_cast<double>(d.liveBytes)));
  o.Set("created", Napi::Number::New(env, static_cast<double>(d.created)));
  return o;
}

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass(fn)");
  Data(info.Env()).errorCtor = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

void Cleanup(AddonData* d) {
  // Environment teardown: free every tensor still held (better-sqlite3's pattern).
  while (d->liveHead != nullptr) d->liveHead->Release(Napi::Env(nullptr), false);
}

void ConfigureAllocator() {
  // CQSEG_MALLOC picks how tensor memory is managed (see allocator.cc):
  //   unset or 'heap': every block through glibc kept in its heap (mmap and trim
  //     thresholds 1 GiB: no page faults on reuse); training switches blocks of 1 MiB+ to
  //     cqseg's caching allocator (useCachingAllocator), unless CQSEG_MALLOC says otherwise;
  //   'cache': the caching allocator from the start;
  //   '<MiB>': glibc with both thresholds at that many MiB (larger blocks mapped, and
  //     returned on free: low peak memory, a page fault per page on every reuse);
  //   'default': glibc's own policy.
  const char* env = std::getenv("CQSEG_MALLOC");
  const std::string policy = env != nullptr ? env : "";
  if (policy == "default") return;
  int threshold = 1 << 30;
  char* end = nullptr;
  const long mib = std::strtol(policy.c_str(), &end, 10);
  if (!policy.empty() && end != nullptr && *end == 0 && mib > 0 && mib <= 1024) threshold = static_cast<int>(mib) << 20;
  mallopt(M_MMAP_THRESHOLD, threshold);
  mallopt(M_TRIM_THRESHOLD, threshold);
  if (policy == "cache") InstallCachingAllocator();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  static std::once_flag allocOnce;
  std::call_once(allocOnce, ConfigureAllocator);
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  env.AddCleanupHook([data]() { Cleanup(data); });
  Napi::Function ctor = TensorHandle::Define(env);
  data->handleCtor = Napi::Persistent(ctor);
  exports.Set("NativeTensor", ctor);
  exports.Set("call", Napi::Function::New(env, Call, "call"));
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer, "fromBuffer"));
  exports.Set("toBuffer", Napi::Function::New(env, ToBuffer, "toBuffer"));
  exports.Set("memory", Napi::Function::New(env, Memory, "memory"));
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("bind", Napi::Function::New(env, Bind, "bind"));
  const char* testing = std::getenv("CQSEG_TESTING_OPS");
  if (testing != nullptr && std::string(testing) == "1") {
    exports.Set("testingCall", Napi::Function::New(env, TestingCall, "testingCall"));
    exports.Set("testingBind", Napi::Function::New(env, TestingBind, "testingBind"));
  }
  exports.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
  return exports;
}

}  // namespace cqseg

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return cqseg::Init(env, exports); }
NODE_API_MODULE(cqseg_native, InitAddon)
