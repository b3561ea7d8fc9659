// Data-parallel training on libtorch's distributed package c10d: one process group per
// process (TCPStore rendezvous + ProcessGroupGloo on the CPU, ProcessGroupNCCL for CUDA
// builds that have it), the collectives the trainer needs, a differentiable all-reduce
// (SyncBatchNorm's and the loss's global sums) and DDP's own gradient engine, c10d::Reducer
// (bucketed all-reduce launched from autograd hooks, so it overlaps the backward pass).
// No communication code of cqseg's: every byte moves through c10d.
//
// Built when the headers are found (scripts/libtorch.js defines CQSEG_WITH_GLOO; Debian
// needs libgloo-dev beside libtorch-dev). Without them every op here throws one clear error.
#include "../common.h"

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>

#ifdef CQSEG_WITH_GLOO
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#ifdef CQSEG_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

namespace cqseg {

#ifdef CQSEG_WITH_GLOO

namespace {

// The process group of this process (c10d's ProcessGroup in libtorch 1.x; in 2.x the
// Gloo and NCCL classes are Backends, which the collectives below use the same way).
#if TORCH_VERSION_MAJOR >= 2
using Group = c10d::Backend;
#else
using Group = c10d::ProcessGroup;
#endif

struct Dist {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Group> group;
  std::chrono::milliseconds timeout{300000};
  std::string backend;
  std::map<int64_t, std::shared_ptr<c10d::Reducer>> reducers;
  int64_t nextReducer = 1;
};

Dist& D() {
  static Dist d;
  return d;
}

Group& G() {
  if (!D().group) throw std::invalid_argument("no process group: initProcessGroup first (cqseg train --nproc N, or the torchrun variables)");
  return *D().group;
}

void Wait(const c10::intrusive_ptr<c10d::Work>& w) {
  if (!w->wait(D().timeout)) throw std::runtime_error("a collective did not complete within the timeout");
}

void AllReduceSumInPlace(std::vector<at::Tensor>& ts) {
  Wait(G().allreduce(ts, c10d::AllreduceOptions()));
}

// (rank, world, master address, port, timeout ms, backend 'gloo' | 'nccl'): TCPStore
// rendezvous (rank 0 serves it) and the process group.
void Init(int64_t rank, int64_t world, const std::string& addr, int64_t port, int64_t timeoutMs, const std::string& backend) {
  if (D().group) throw std::invalid_argument("a process group already exists in this process");
  if (world < 1 || rank < 0 || rank >= world) throw std::invalid_argument("rank must be in [0, world size)");
  const auto timeout = std::chrono::milliseconds(timeoutMs);
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(port);
  so.isServer = rank == 0;
  so.numWorkers = static_cast<int>(world);
  so.waitWorkers = true;
  so.timeout = timeout;
  auto store = c10::make_intrusive<c10d::TCPStore>(addr, so);
  c10::intrusive_ptr<Group> group;
  if (backend == "gloo") {
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname && *ifname) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (addr == "127.0.0.1" || addr == "localhost") {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, static_cast<int>(rank), static_cast<int>(world), opts);
  } else if (backend == "nccl") {
#ifdef CQSEG_WITH_NCCL
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, static_cast<int>(rank), static_cast<int>(world), opts);
#else
    throw std::invalid_argument("this build has no NCCL (libtorch without CUDA, or no nccl.h found at build time): use the CPU (Gloo)");
#endif
  } else {
    throw std::invalid_argument("backend must be 'gloo' or 'nccl', got '" + backend + "'");
  }
  D().store = store;
  D().group = group;
  D().timeout = timeout;
  D().backend = backend;
}

void Destroy() {
  D().reducers.clear();
  D().group.reset();
  D().store.reset();
}

// In-place broadcast of several tensors from `root`, as one flat buffer per dtype run.
void BroadcastCoalesced(std::vector<at::Tensor>& ts, int64_t root) {
  if (ts.empty()) return;
  std::vector<at::Tensor> flat;
  for (auto& t : ts) flat.push_back(t.detach().reshape({-1}).to(ts[0].scalar_type()));
  std::vector<at::Tensor> buf{at::cat(flat)};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  Wait(G().broadcast(buf, o));
  int64_t off = 0;
  at::NoGradGuard ng;
  for (auto& t : ts) {
    const int64_t n = t.numel();
    t.detach().copy_(buf[0].narrow(0, off, n).view(t.sizes()));
    off += n;
  }
}

// sum over processes, differentiable: the gradient of each input is the sum over
// processes of the output's gradients (PyTorch's SyncBatchNorm backward reduces the same way)
struct GlobalSumFn : public torch::autograd::Function<GlobalSumFn> {
  static at::Tensor forward(torch::autograd::AutogradContext*, const at::Tensor& x) {
    std::vector<at::Tensor> v{x.detach().clone(at::MemoryFormat::Contiguous)};
    AllReduceSumInPlace(v);
    return v[0];
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*, torch::autograd::variable_list g) {
    std::vector<at::Tensor> v{g[0].contiguous().clone()};
    AllReduceSumInPlace(v);
    return {v[0]};
  }
};

// x (K) -> (world, K): every process's x, row r from rank r, differentiable: the gradient of
// x is its row of the output's gradient summed over the processes (SyncBatchNorm's statistics
// travel this way: one collective forward, one backward)
struct GatherFn : public torch::autograd::Function<GatherFn> {
  static at::Tensor forward(torch::autograd::AutogradContext*, const at::Tensor& x) {
    const int64_t world = G().getSize();
    std::vector<at::Tensor> in{x.detach().contiguous()};
    std::vector<std::vector<at::Tensor>> out(1);
    for (int64_t r = 0; r < world; r++) out[0].push_back(at::empty_like(in[0]));
    Wait(G().allgather(out, in, c10d::AllgatherOptions()));
    return at::stack(out[0]);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*, torch::autograd::variable_list g) {
    std::vector<at::Tensor> v{g[0].contiguous().clone()};
    AllReduceSumInPlace(v);
    return {v[0].select(0, G().getRank()).clone()};
  }
};

// DDP's gradient engine over `params` (those that require grad), buckets of `bucketBytes`
// (the first one 1 MiB, as DDP), averaged over the processes.
int64_t ReducerCreate(const std::vector<at::Tensor>& params, int64_t bucketBytes) {
  if (!D().group) throw std::invalid_argument("no process group: initProcessGroup first");
  const int64_t first = 1024 * 1024;
  std::vector<bool> sparse(params.size(), false);
  auto assigned = c10d::compute_bucket_assignment_by_size(params, {static_cast<size_t>(first), static_cast<size_t>(bucketBytes)}, sparse);
  auto buckets = std::get<0>(assigned);
  auto limits = std::get<1>(assigned);
  std::reverse(buckets.begin(), buckets.end());
  std::reverse(limits.begin(), limits.end());
#if TORCH_VERSION_MAJOR >= 2
  // the Reducer takes a ProcessGroup, which in 2.x wraps the Backend (unverified here: no 2.x
  // libtorch on the machines that built this; npm run check:gpu builds it)
  const bool nccl = D().backend == "nccl";
#if TORCH_VERSION_MINOR >= 6
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(D().store, D().group->getRank(), D().group->getSize());
#else
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(D().store, D().group->getRank(), D().group->getSize(),
                                                    c10::make_intrusive<c10d::ProcessGroup::Options>(D().backend, D().timeout));
#endif
  pg->setBackend(nccl ? c10::DeviceType::CUDA : c10::DeviceType::CPU,
                 nccl ? c10d::ProcessGroup::BackendType::NCCL : c10d::ProcessGroup::BackendType::GLOO, D().group);
#else
  auto pg = D().group;
#endif
  auto r = std::make_shared<c10d::Reducer>(params, buckets, limits, pg, sparse, bucketBytes, false, false,
                                           std::unordered_map<size_t, std::string>(), first);
  const int64_t id = D().nextReducer++;
  D().reducers[id] = r;
  return id;
}

c10d::Reducer& R(int64_t id) {
  auto it = D().reducers.find(id);
  if (it == D().reducers.end()) throw std::invalid_argument("no such gradient reducer (disposed?)");
  return *it->second;
}

}  // namespace

void RegisterDistOps(Ops& ops) {
  // (rank, world, addr, port, timeoutMs, backend)
  OP("distInit", Init(a.i64(0), a.i64(1), a.str(2), a.i64(3), a.i64(4), a.str(5)); return None{};);
  OP("distDestroy", Destroy(); return None{};);
  OP("distAvailable", return true;);
  OP("distRank", return static_cast<int64_t>(G().getRank()););
  OP("distWorldSize", return static_cast<int64_t>(G().getSize()););
  OP("distBarrier", Wait(G().barrier(c10d::BarrierOptions())); return None{};);
  // tensors, root: in place, from root
  OP("distBroadcast", { auto ts = a.tensors(0); BroadcastCoalesced(ts, a.i64(1)); return None{}; });
  // x -> the sum of x over the processes (differentiable)
  OP("distGlobalSum", return GlobalSumFn::apply(a.t(0)););
  // x (K) -> (world, K) (differentiable)
  OP("distGather", return GatherFn::apply(a.t(0)););
  // params, bucket bytes -> reducer id
  OP("ddpCreate", return ReducerCreate(a.tensors(0), a.i64(1)););
  // id: the next backward's gradients are reduced (call once per step, before backward)
  OP("ddpPrepare", R(a.i64(0)).prepare_for_backward({}); return None{};);
  OP("ddpDestroy", D().reducers.erase(a.i64(0)); return None{};);
}

#else  // no c10d headers at build time

namespace {
[[noreturn]] void NoDist() {
  throw std::invalid_argument("this build of cqseg has no c10d (Gloo headers were not found at build time): on Debian, apt-get install libgloo-dev and rebuild (npm run build)");
}
}  // namespace

void RegisterDistOps(Ops& ops) {
  OP("distInit", a.i64(0); a.i64(1); a.str(2); a.i64(3); a.i64(4); a.str(5); NoDist(););
  OP("distDestroy", return None{};);
  OP("distAvailable", return false;);
  OP("distRank", NoDist(););
  OP("distWorldSize", NoDist(););
  OP("distBarrier", NoDist(););
  OP("distBroadcast", a.tensors(0); a.i64(1); NoDist(););
  OP("distGlobalSum", a.t(0); NoDist(););
  OP("distGather", a.t(0); NoDist(););
  OP("ddpCreate", a.tensors(0); a.i64(1); NoDist(););
  OP("ddpPrepare", a.i64(0); NoDist(););
  OP("ddpDestroy", a.i64(0); return None{};);
}

#endif

}  // namespace cqseg
