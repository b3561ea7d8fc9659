// A size-bucketed caching allocator for large CPU tensors, installed as libtorch's CPU
// allocator by training (op useCachingAllocator) or at load with CQSEG_MALLOC=cache.
// Not the default for everything: in the DCIN benchmark, right after a memory-heavy
// phase, first-touch faults of freshly mapped blocks made Lab transfer 1.5x slower than
// glibc's heap (which had the memory at hand).
//
// Why: a training step frees and reallocates the same activation sizes every step.
// glibc maps and unmaps blocks above its mmap threshold each time (a page fault per 4 KiB
// on every reuse: measured +30-40% step time on Unet(b2) at 512x768), and keeping them in
// its heap instead (a 1 GiB threshold) fragments it (peak RSS +20% over the live peak).
// Here blocks of 1 MiB and more are mapped once (64 KiB multiples; huge pages on request)
// and on free kept for the next request they fit (best fit, at most a quarter wasted);
// smaller blocks go to libtorch's default allocator. Data and context pointers are equal
// and raw_deleter() is set, as oneDNN's scratch allocations through raw_allocate require.
// Cached bytes above a limit (default 4 GiB; env CQSEG_CACHE_MIB) are unmapped, largest
// first, when a request misses. A small limit trades speed for peak memory: Unet(b2) at
// 512x768, batch 2, 1 thread, peak RSS 2.69 GB with the 4 GiB default (the heap policy:
// 2.8-3.1 GB at about the same speed) and 2.10 GB with 256 MiB at +35% step time (blocks
// mapped again, and faulted in, every step); two views (cqg) with a 1 GiB limit +35%.
#include "common.h"

#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>

#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace cqseg {

namespace {

constexpr size_t kMin = size_t{1} << 20;
constexpr size_t kRound = size_t{1} << 16;

struct CacheState {
  std::mutex mutex;
  std::map<size_t, std::vector<void*>> free;   // rounded size -> blocks
  std::unordered_map<void*, size_t> sizes;     // every mapped block -> its size
  c10::DeleterFnPtr smallDeleter = nullptr;
  size_t cached = 0, mapped = 0, limit = size_t{4} << 30;
  int64_t hits = 0, misses = 0;
};

CacheState& State() {
  static CacheState* s = new CacheState();  // never destroyed: tensors may be freed at exit
  return *s;
}

void Release(void* base) {
  if (base == nullptr) return;
  CacheState& s = State();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.sizes.find(base);
    if (it != s.sizes.end()) {
      s.free[it->second].push_back(base);
      s.cached += it->second;
      return;
    }
  }
  s.smallDeleter(base);  // a block of the default allocator (raw_deallocate)
}

// Unmaps cached blocks, largest first, until at most `keep` bytes stay cached (lock held).
void Trim(CacheState& s, size_t keep) {
  while (s.cached > keep && !s.free.empty()) {
    auto it = std::prev(s.free.end());
    void* base = it->second.back();
    it->second.pop_back();
    munmap(base, it->first);
    s.sizes.erase(base);
    s.cached -= it->first;
    s.mapped -= it->first;
    if (it->second.empty()) s.free.erase(it);
  }
}

bool UseThp() {
  static const bool yes = [] {
    const char* v = std::getenv("CQSEG_THP");
    return v != nullptr && std::string(v) == "1";
  }();
  return yes;
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(c10::Allocator* small) : small_(small) {}

  c10::DataPtr allocate(size_t n) const override {
    if (n < kMin) {
      c10::DataPtr p = small_->allocate(n);
      TORCH_INTERNAL_ASSERT(p.get() == p.get_context(), "cqseg allocator: the default allocator's data and context differ");
      return p;
    }
    const size_t size = (n + kRound - 1) / kRound * kRound;
    CacheState& s = State();
    void* base = nullptr;
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      // best fit: the smallest cached block that holds n and wastes at most a quarter
      auto it = s.free.lower_bound(size);
      if (it != s.free.end() && it->first <= size + size / 4) {
        base = it->second.back();
        it->second.pop_back();
        s.cached -= it->first;
        if (it->second.empty()) s.free.erase(it);
        s.hits++;
      } else {
        s.misses++;
        if (s.cached > s.limit) Trim(s, s.limit);
      }
    }
    if (base == nullptr) {
      base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      // transparent huge pages on request (CQSEG_THP=1): a fault per 2 MiB instead of per
      // 4 KiB when a block is first touched, but direct compaction can stall a fault for
      // milliseconds (measured: DCIN transfer 4x slower after a memory-heavy phase), so off
      if (base != MAP_FAILED && size >= (size_t{2} << 20) && UseThp()) madvise(base, size, MADV_HUGEPAGE);
      if (base == MAP_FAILED) {
        // give the cache back to the system and try once more
        {
          std::lock_guard<std::mutex> lock(s.mutex);
          Trim(s, 0);
        }
        base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        TORCH_CHECK(base != MAP_FAILED, "DefaultCPUAllocator: not enough memory: you tried to allocate ", n, " bytes.");
      }
      std::lock_guard<std::mutex> lock(s.mutex);
      s.mapped += size;
      s.sizes[base] = size;
    }
    return {base, base, &Release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Release; }

 private:
  c10::Allocator* small_;
};

}  // namespace

void InstallCachingAllocator() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (const char* mib = std::getenv("CQSEG_CACHE_MIB")) {
      const long v = std::strtol(mib, nullptr, 10);
      if (v >= 0) State().limit = static_cast<size_t>(v) << 20;
    }
    c10::Allocator* small = c10::GetDefaultCPUAllocator();
    State().smallDeleter = small->raw_deleter();
    if (State().smallDeleter == nullptr) return;  // nothing to hand small raw blocks back to: keep libtorch's allocator
    static CachingCpuAllocator alloc(small);
    c10::SetCPUAllocator(&alloc, /*priority=*/1);
  });
}

void RegisterAllocatorOps(std::vector<OpDef>& ops) {
  // install the caching allocator unless CQSEG_MALLOC chose another policy; true if in use
  OP("useCachingAllocator", {
    const char* env = std::getenv("CQSEG_MALLOC");
    if (env != nullptr && *env != 0 && std::string(env) != "cache") return false;
    InstallCachingAllocator();
    return c10::GetCPUAllocator() != c10::GetDefaultCPUAllocator();
  });
  // [cached bytes, mapped bytes, hits, misses] of the caching allocator
  OP("allocatorStats", {
    CacheState& s = State();
    std::lock_guard<std::mutex> lock(s.mutex);
    return std::vector<int64_t>{static_cast<int64_t>(s.cached), static_cast<int64_t>(s.mapped), s.hits, s.misses};
  });
  // unmap every cached block
  OP("allocatorEmptyCache", {
    CacheState& s = State();
    std::lock_guard<std::mutex> lock(s.mutex);
    Trim(s, 0);
    return None{};
  });
}

}  // namespace cqseg
