// A caching allocator for large CPU tensors: one reserved address range, best fit with
// splitting and coalescing. Installed as libtorch's CPU allocator by training (op
// useCachingAllocator) or at load with CQSEG_MALLOC=cache. Not the default for
// everything: in the DCIN benchmark glibc's heap, which already had the memory at hand,
// was as fast, and a process that never trains should not hold a reservation.
//
// Why: a training step frees and reallocates the same activation sizes every step.
// glibc maps and unmaps blocks above its mmap threshold each time (a page fault per 4 KiB
// on every reuse), and keeping them in its heap instead (a 1 GiB threshold) mixes them
// with small blocks (a higher peak RSS than the live peak); bench/core.ts and
// bench/train.ts measure both. The first version of this allocator kept freed blocks in size buckets
// (each mapped on its own, reused when a request fit with at most a quarter wasted): no
// faults on reuse, but a freed block never served a smaller or a larger request, and on a
// recorded trace of one Unet(b2) 512x768 step it mapped 2,342 MB for 1,491 MB of live
// blocks. Best fit over one contiguous range, freed neighbours merged, needs 1,579 MB on
// the same trace (cqg 512x768: 2,833 MB for 2,724 MB live; 256x384: 408 for 382), and
// pages once touched stay resident, so steady-state steps take no faults either.
//
// Layout: [base, top) is cut into used blocks and free ranges; [top, committed) is idle
// readable memory; [committed, end) is reserved address space (PROT_NONE, no commit
// charge). A request of 1 MiB or more (rounded to 64 KiB) takes the smallest free range
// that holds it, or the space at top (merged with a free range ending at top); committed
// grows by mprotect in 2 MiB steps, so an impossible request fails there, as a fresh mmap
// would, with an error instead of the OOM killer. Smaller requests go to libtorch's
// default allocator. Data and context pointers are equal and raw_deleter() is set, as
// oneDNN's scratch allocations through raw_allocate require. Idle bytes above a limit
// (default 4 GiB; env CQSEG_CACHE_MIB) are given back from the tail when top falls.
// Requests that do not fit in the reservation are mapped on their own and unmapped on free.
// Transparent huge pages on request (CQSEG_THP=1): faster training faults, but direct
// compaction can stall later phases (DCIN transfer after a memory-heavy one), so off by default.
#include "common.h"

#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

namespace cqseg {

namespace {

constexpr size_t kMin = size_t{1} << 20;
constexpr size_t kRound = size_t{1} << 16;
constexpr size_t kCommitStep = size_t{2} << 20;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

struct ArenaState {
  std::mutex mutex;
  char* base = nullptr;  // reservation (kCommitStep-aligned); null when none could be made
  char* top = nullptr;
  char* committed = nullptr;
  char* end = nullptr;
  std::map<char*, size_t> freeByAddr;             // free ranges below top
  std::set<std::pair<size_t, char*>> freeBySize;  // the same, for best fit
  std::unordered_map<void*, size_t> used;         // arena blocks in use -> size
  std::unordered_map<void*, size_t> direct;       // blocks mapped on their own -> size
  c10::DeleterFnPtr smallDeleter = nullptr;
  size_t arenaInUse = 0, directBytes = 0, limit = size_t{4} << 30;
  size_t peakMapped = 0, peakInUse = 0;
  int64_t hits = 0, misses = 0;

  size_t Mapped() const { return static_cast<size_t>(committed - base) + directBytes; }
  size_t Idle() const { return static_cast<size_t>(committed - base) - arenaInUse; }
  void NotePeaks() {
    peakMapped = std::max(peakMapped, Mapped());
    peakInUse = std::max(peakInUse, arenaInUse + directBytes);
  }
  void AddFree(char* p, size_t n) {
    freeByAddr.emplace(p, n);
    freeBySize.emplace(n, p);
  }
  void EraseFree(std::map<char*, size_t>::iterator it) {
    freeBySize.erase({it->second, it->first});
    freeByAddr.erase(it);
  }
};

ArenaState& State() {
  static ArenaState* s = new ArenaState();  // never destroyed: tensors may be freed at exit
  return *s;
}

bool UseThp() {
  static const bool yes = [] {
    const char* v = std::getenv("CQSEG_THP");
    return v != nullptr && std::string(v) == "1";
  }();
  return yes;
}

// Reserves address space: twice the physical memory, halved while the system refuses
// (an address-space rlimit), down to 256 MiB; none at all leaves every block on its own.
void Reserve(ArenaState& s) {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  size_t want = pages > 0 && page > 0 ? RoundUp(static_cast<size_t>(pages) * static_cast<size_t>(page) * 2, kCommitStep) : size_t{64} << 30;
  for (; want >= (size_t{256} << 20); want /= 2) {
    void* p = mmap(nullptr, want + kCommitStep, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) continue;
    char* raw = static_cast<char*>(p);
    char* aligned = reinterpret_cast<char*>(RoundUp(reinterpret_cast<uintptr_t>(raw), kCommitStep));
    if (aligned > raw) munmap(raw, static_cast<size_t>(aligned - raw));
    char* stop = aligned + want;
    if (raw + want + kCommitStep > stop) munmap(stop, static_cast<size_t>(raw + want + kCommitStep - stop));
    if (UseThp()) madvise(aligned, want, MADV_HUGEPAGE);
    s.base = s.top = s.committed = aligned;
    s.end = stop;
    return;
  }
}

// Gives [from, committed) back to the system: its pages and its commit charge (lock held).
void Decommit(ArenaState& s, char* from) {
  if (from >= s.committed) return;
  // a fresh PROT_NONE mapping over the range drops its pages and its accounting at once
  void* p = mmap(from, static_cast<size_t>(s.committed - from), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (p != MAP_FAILED) s.committed = from;
}

// Releases idle tail memory beyond `keep` idle bytes (lock held).
void TrimTail(ArenaState& s, size_t keep) {
  const size_t idle = s.Idle();
  if (idle <= keep) return;
  const size_t excess = idle - keep;
  const size_t tail = static_cast<size_t>(s.committed - s.top);
  const size_t cut = std::min(excess, tail) / kCommitStep * kCommitStep;
  if (cut > 0) Decommit(s, s.committed - cut);
}

void Release(void* ptr) {
  if (ptr == nullptr) return;
  ArenaState& s = State();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto u = s.used.find(ptr);
    if (u != s.used.end()) {
      char* p = static_cast<char*>(ptr);
      size_t n = u->second;
      s.used.erase(u);
      s.arenaInUse -= n;
      // merge with the free neighbours
      auto next = s.freeByAddr.find(p + n);
      if (next != s.freeByAddr.end()) {
        n += next->second;
        s.EraseFree(next);
      }
      auto after = s.freeByAddr.lower_bound(p);
      if (after != s.freeByAddr.begin()) {
        auto prev = std::prev(after);
        if (prev->first + prev->second == p) {
          p = prev->first;
          n += prev->second;
          s.EraseFree(prev);
        }
      }
      if (p + n == s.top) {
        s.top = p;
        TrimTail(s, s.limit);
      } else {
        s.AddFree(p, n);
      }
      return;
    }
    auto d = s.direct.find(ptr);
    if (d != s.direct.end()) {
      munmap(ptr, d->second);
      s.directBytes -= d->second;
      s.direct.erase(d);
      return;
    }
  }
  s.smallDeleter(ptr);  // a block of the default allocator (raw_deallocate)
}

// An arena block of `size` bytes, or null when the reservation cannot hold it (lock held).
char* ArenaAllocate(ArenaState& s, size_t size) {
  if (s.base == nullptr) return nullptr;
  auto fit = s.freeBySize.lower_bound({size, nullptr});
  if (fit != s.freeBySize.end()) {
    char* p = fit->second;
    const size_t n = fit->first;
    s.EraseFree(s.freeByAddr.find(p));
    if (n > size) s.AddFree(p + size, n - size);
    s.hits++;
    return p;
  }
  // at top, together with a free range that ends there
  char* p = s.top;
  auto last = s.freeByAddr.empty() ? s.freeByAddr.end() : std::prev(s.freeByAddr.end());
  const bool merge = last != s.freeByAddr.end() && last->first + last->second == s.top;
  if (merge) p = last->first;
  if (size > static_cast<size_t>(s.end - p)) return nullptr;
  char* newTop = p + size;
  if (newTop > s.committed) {
    char* want = std::min(s.end, reinterpret_cast<char*>(RoundUp(reinterpret_cast<uintptr_t>(newTop), kCommitStep)));
    // refused like a fresh mmap of that size would be: the caller's own mapping fails too
    if (mprotect(s.committed, static_cast<size_t>(want - s.committed), PROT_READ | PROT_WRITE) != 0) return nullptr;
    s.committed = want;
    s.misses++;
  } else {
    s.hits++;
  }
  if (merge) s.EraseFree(last);
  s.top = newTop;
  return p;
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
    const size_t size = RoundUp(n, kRound);
    ArenaState& s = State();
    void* ptr = nullptr;
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      char* p = ArenaAllocate(s, size);
      if (p != nullptr) {
        s.used.emplace(p, size);
        s.arenaInUse += size;
        s.NotePeaks();
        ptr = p;
      }
    }
    if (ptr == nullptr) {
      // outside the reservation (full, or none): a mapping of its own
      ptr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      TORCH_CHECK_WITH(OutOfMemoryError, ptr != MAP_FAILED, "DefaultCPUAllocator: not enough memory: you tried to allocate ", n, " bytes.");
      std::lock_guard<std::mutex> lock(s.mutex);
      s.direct.emplace(ptr, size);
      s.directBytes += size;
      s.misses++;
      s.NotePeaks();
    }
    return {ptr, ptr, &Release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Release; }

 private:
  c10::Allocator* small_;
};

}  // namespace

void InstallCachingAllocator() {
  static std::once_flag once;
  std::call_once(once, [] {
    ArenaState& s = State();
    if (const char* mib = std::getenv("CQSEG_CACHE_MIB")) {
      const long v = std::strtol(mib, nullptr, 10);
      if (v >= 0) s.limit = static_cast<size_t>(v) << 20;
    }
    c10::Allocator* small = c10::GetDefaultCPUAllocator();
    s.smallDeleter = small->raw_deleter();
    if (s.smallDeleter == nullptr) return;  // nothing to hand small raw blocks back to: keep libtorch's allocator
    Reserve(s);
    static CachingCpuAllocator alloc(small);
    c10::SetCPUAllocator(&alloc, /*priority=*/1);
  });
}

void RegisterAllocatorOps(Ops& ops) {
  // install the caching allocator unless CQSEG_MALLOC chose another policy; true if in use
  OP("useCachingAllocator", {
    const char* env = std::getenv("CQSEG_MALLOC");
    if (env != nullptr && *env != 0 && std::string(env) != "cache") return false;
    InstallCachingAllocator();
    return c10::GetCPUAllocator() != c10::GetDefaultCPUAllocator();
  });
  // [idle bytes, mapped bytes, hits, misses, peak mapped, peak in use, free ranges] of the
  // caching allocator: idle = committed and not in use; a hit needs no new memory
  TEST_OP("allocatorStats", {
    ArenaState& s = State();
    std::lock_guard<std::mutex> lock(s.mutex);
    return std::vector<int64_t>{static_cast<int64_t>(s.Idle()), static_cast<int64_t>(s.Mapped()), s.hits, s.misses,
                                static_cast<int64_t>(s.peakMapped), static_cast<int64_t>(s.peakInUse), static_cast<int64_t>(s.freeByAddr.size())};
  });
  // gives back the idle tail and the pages of every free range
  TEST_OP("allocatorEmptyCache", {
    ArenaState& s = State();
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.base == nullptr) return None{};
    TrimTail(s, 0);
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    for (const auto& [p, n] : s.freeByAddr) {
      const uintptr_t from = RoundUp(reinterpret_cast<uintptr_t>(p), page), to = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
      if (to > from) madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
    }
    return None{};
  });
}

}  // namespace cqseg
