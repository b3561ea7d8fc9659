// Shared declarations of the cqseg addon: the tensor handle, argument reading,
// op results and the op table. The addon stays thin: one op = one libtorch call.
#pragma once
#define NAPI_CPP_EXCEPTIONS
#include <napi.h>
#include <ATen/ATen.h>
#include <torch/version.h>

#include <cstdint>
#include <string>
#include <unordered_set>
#include <variant>
#include <vector>

namespace cqseg {

// Per-environment state (main thread and each worker_thread get their own).
struct AddonData;

class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  // Attach a tensor (counts it live and reports its bytes to V8).
  void Attach(Napi::Env env, at::Tensor t);
  // Release the tensor now; safe to call twice.
  void Release(Napi::Env env, bool adjustV8);
  bool alive() const { return alive_; }
  at::Tensor& tensor() { return tensor_; }

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  friend struct AddonData;
  at::Tensor tensor_;
  int64_t bytes_ = 0;
  bool alive_ = false;
  AddonData* data_ = nullptr;
  // intrusive list of live handles (O(1) link/unlink, no allocation per tensor)
  TensorHandle* prev_ = nullptr;
  TensorHandle* next_ = nullptr;
};

struct AddonData {
  Napi::FunctionReference handleCtor;
  Napi::FunctionReference errorCtor;  // TS-defined error class (set at init)
  TensorHandle* liveHead = nullptr;
  int64_t liveCount = 0;
  int64_t liveBytes = 0;
  int64_t created = 0;
  // bytes not yet reported to V8; flushed once they pass 1 MiB either way
  int64_t pendingExternal = 0;
  void Link(TensorHandle* h);
  void Unlink(TensorHandle* h);
  void ReportExternal(Napi::Env env, int64_t delta);
};

AddonData& Data(Napi::Env env);
Napi::Object Wrap(Napi::Env env, at::Tensor t);

// What one argument of an op is, as the manifest declares it ('T', 'T?', 'TS', 'ints', ...).
enum class ArgKind : uint8_t {
  kTensor, kTensorOpt, kTensorOrScalar, kScalar, kScalarOpt, kInt, kIntOpt, kFloat, kFloatOpt, kBool, kBoolOpt,
  kString, kStringOpt, kInts, kIntsOpt, kFloats, kTensors, kDtype, kDtypeOpt, kDeviceOpt,
};
// The kind named by a manifest string; throws for an unknown one.
ArgKind ArgKindOf(const std::string& s);

class Args;
struct None {};
// Tensors with names, and notes on what else was found (torchLoad)
struct NamedTensors {
  std::vector<std::string> names;
  std::vector<at::Tensor> tensors;
  std::vector<std::string> others;
};
using Result = std::variant<None, at::Tensor, std::vector<at::Tensor>, double, int64_t, bool,
                            std::vector<int64_t>, std::string, NamedTensors>;

using OpFn = Result (*)(Args&);
struct OpDef {
  const char* name;
  OpFn fn;
  // argument kinds, from the manifest the TS side binds at load (src/tensor/manifest.ts)
  std::vector<ArgKind> kinds;
  bool bound = false;
};

// Typed access to an op's arguments (info[0] is the op id). Each accessor checks that the
// manifest declares the argument as a kind it may read (a.t(i) of a 'T', 'T?' or 'TS'),
// so the C++ body and the manifest cannot disagree unnoticed.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const OpDef& op) : info_(info), op_(op.name), kinds_(&op.kinds) {}
  Napi::Env env() const { return info_.Env(); }
  size_t size() const { return info_.Length() - 1; }
  bool none(size_t i) const;
  at::Tensor& t(size_t i) const;             // a live tensor handle
  at::Tensor ot(size_t i) const;             // tensor or undefined (null/undefined)
  c10::optional<at::Tensor> optT(size_t i) const;
  bool isTensor(size_t i) const;
  at::Scalar scalar(size_t i) const;         // number or boolean
  int64_t i64(size_t i) const;
  c10::optional<int64_t> optI64(size_t i) const;
  double f64(size_t i) const;
  c10::optional<double> optF64(size_t i) const;
  bool b(size_t i) const;
  std::string str(size_t i) const;
  std::vector<int64_t> ints(size_t i) const;  // array of numbers
  std::vector<double> f64s(size_t i) const;
  std::vector<at::Tensor> tensors(size_t i) const;
  at::ScalarType dtype(size_t i) const;       // dtype code (see DtypeFromCode)
  c10::optional<at::ScalarType> optDtype(size_t i) const;
  at::Device device(size_t i) const;          // device string 'cpu' | 'cuda:0'
  at::TensorOptions options(size_t dtypeIdx, size_t deviceIdx) const;
  [[noreturn]] void fail(size_t i, const std::string& what) const;

 private:
  Napi::Value at(size_t i) const { return info_[i + 1]; }
  // fails unless the manifest declares argument i as one of `allowed` (a bit per ArgKind)
  void expect(size_t i, uint32_t allowed, const char* accessor) const;
  at::Tensor& rawT(size_t i) const;
  int64_t rawI64(size_t i) const;
  std::string rawStr(size_t i) const;
  const Napi::CallbackInfo& info_;
  const char* op_;
  const std::vector<ArgKind>* kinds_;
};

// The two op tables: `production` (what src/tensor calls) and `testing` (raw kernels and
// counters for tests and benchmarks, reachable only when the addon loads with
// CQSEG_TESTING_OPS=1).
struct Ops {
  std::vector<OpDef> production;
  std::vector<OpDef> testing;
};

void RegisterMathOps(Ops& ops);
void RegisterNnOps(Ops& ops);
void RegisterAugmentOps(Ops& ops);
void RegisterSerializeOps(Ops& ops);
void RegisterDistOps(Ops& ops);
void RegisterAllocatorOps(Ops& ops);
void InstallCachingAllocator();

// dtype codes shared with src/tensor/dtype.ts
at::ScalarType DtypeFromCode(int64_t code);
int64_t DtypeToCode(at::ScalarType t);

}  // namespace cqseg

#define OP(NAME, ...) ops.production.push_back({NAME, [](Args& a) -> Result { __VA_ARGS__ }, {}})
#define TEST_OP(NAME, ...) ops.testing.push_back({NAME, [](Args& a) -> Result { __VA_ARGS__ }, {}})
