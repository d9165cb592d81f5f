#include "runtime/cpu/executor.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <new>

#include <fmt/format.h>

#include "runtime/cpu/builtin_kernels.h"
#include "support/error.h"

namespace nibble::rt {

namespace {

constexpr size_t kAlign = 64;

uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

const char* kind_name(BufKind k) {
  switch (k) {
    case BufKind::Weight: return "weight";
    case BufKind::Arena: return "arena";
    case BufKind::State: return "state";
    case BufKind::Tokens: return "tokens";
    case BufKind::Pos: return "pos";
    case BufKind::Null: return "null";
  }
  return "?";
}

}  // namespace

void CpuExecutor::AlignedDelete::operator()(std::byte* p) const { ::operator delete(p, std::align_val_t(kAlign)); }

CpuExecutor::Block CpuExecutor::alloc_zeroed(uint64_t bytes) {
  const uint64_t size = round_up(std::max<uint64_t>(bytes, 1), kAlign);
  auto* p = static_cast<std::byte*>(::operator new(size, std::align_val_t(kAlign)));
  std::memset(p, 0, size);
  return Block(p);
}

CpuExecutor::CpuExecutor(const CpuPlan& plan, JitResolver resolve_jit, int threads)
    : pool_(threads), max_tokens_(plan.max_tokens), n_vocab_(plan.n_vocab), n_ctx_(plan.n_ctx) {
  if (max_tokens_ <= 0 || n_vocab_ <= 0 || n_ctx_ <= 0)
    fail("cpu runtime: plan needs positive max_tokens, n_vocab and n_ctx (got {}, {}, {})", max_tokens_, n_vocab_,
         n_ctx_);
  const int T = pool_.size();
  arena_ = alloc_zeroed(plan.arena_bytes);
  arena_bytes_ = plan.arena_bytes;
  tokens_ = alloc_zeroed(uint64_t(max_tokens_) * 4);
  pos_ = alloc_zeroed(uint64_t(max_tokens_) * 4);
  const uint64_t scratch_stride = round_up(plan.scratch_bytes, kAlign);
  scratch_ = alloc_zeroed(scratch_stride * uint64_t(T));
  for (const StateBuffer& s : plan.states) {
    states_.push_back(alloc_zeroed(s.bytes));
    state_bytes_.push_back(s.bytes);
  }

  // Resolves a reference needing `need` bytes from its offset; a bad plan is an error here.
  auto resolve = [&](const BufRef& r, uint64_t need, bool nullable, const std::string& where) -> void* {
    std::byte* base = nullptr;
    uint64_t size = 0;
    switch (r.kind) {
      case BufKind::Null:
        if (!nullable) fail("cpu runtime: {}: a null buffer where one is required", where);
        return nullptr;
      case BufKind::Weight:
        if (r.index >= plan.weights.size())
          fail("cpu runtime: {}: weight index {} out of range ({} weights)", where, r.index, plan.weights.size());
        if (!plan.weights[r.index].data) fail("cpu runtime: {}: weight '{}' has no data", where, plan.weights[r.index].name);
        base = static_cast<std::byte*>(const_cast<void*>(plan.weights[r.index].data));
        size = plan.weights[r.index].bytes;
        break;
      case BufKind::Arena:
        base = arena_.get();
        size = plan.arena_bytes;
        break;
      case BufKind::State:
        if (r.index >= states_.size())
          fail("cpu runtime: {}: state index {} out of range ({} states)", where, r.index, states_.size());
        base = states_[r.index].get();
        size = state_bytes_[r.index];
        break;
      case BufKind::Tokens:
      case BufKind::Pos:
        base = (r.kind == BufKind::Tokens ? tokens_ : pos_).get();
        size = uint64_t(max_tokens_) * 4;
        break;
      default:
        fail("cpu runtime: {}: unknown buffer kind {}", where, int(r.kind));
    }
    if (r.offset >= size || need > size - r.offset)
      fail("cpu runtime: {}: {} buffer range [{}, {}) is outside its {} bytes", where, kind_name(r.kind), r.offset,
           r.offset + std::max<uint64_t>(need, 1), size);
    return base + r.offset;
  };

  size_t n_bufs = 0, n_ints = 0, n_floats = 0;
  for (const Step& s : plan.steps) n_bufs += s.bufs.size(), n_ints += s.ints.size(), n_floats += s.floats.size();
  // Reserved up front: args_ points into these.
  buf_ptrs_.reserve(n_bufs);
  ints_.reserve(n_ints);
  floats_.reserve(n_floats);
  steps_.reserve(plan.steps.size());
  args_.reserve(plan.steps.size() * size_t(T));

  std::map<std::string, size_t> slots;
  for (size_t si = 0; si < plan.steps.size(); ++si) {
    const Step& s = plan.steps[si];
    const std::string where = fmt::format("step {} ({})", si, s.label.empty() ? s.kernel : s.label);
    if (s.tasks < 0 || s.tasks_per_token < 0) fail("cpu runtime: {}: negative task count", where);

    StepRt rt;
    rt.tasks = s.tasks;
    rt.tasks_per_token = s.tasks_per_token;
    BuiltinNeeds needs;  // from the built-in(s): operand sizes, nullability, scratch, n_ctx
    bool have_needs = false;
    auto resolve_kernel = [&](const std::string& sym) -> NibbleKernelFn {
      if (NibbleKernelFn fn = find_builtin_kernel(sym)) {
        BuiltinNeeds n = builtin_needs(sym, s.bufs.size(), s.ints, s.floats, s.tasks, s.tasks_per_token, max_tokens_);
        if (!have_needs) needs = std::move(n), have_needs = true;
        return fn;
      }
      if (resolve_jit)
        if (NibbleKernelFn fn = resolve_jit(sym)) return fn;
      fail("cpu runtime: {}: unknown kernel '{}' (not built in, not provided by the JIT)", where, sym);
    };
    try {
      rt.fn = resolve_kernel(s.kernel);
      if (s.batch_from_tokens > 0 && !s.batch_kernel.empty()) {
        rt.batch_fn = resolve_kernel(s.batch_kernel);
        rt.batch_from = s.batch_from_tokens;
      }
    } catch (const Error& e) {
      if (std::string_view(e.what()).starts_with("cpu runtime:")) throw;
      fail("cpu runtime: {}: {}", where, e.what());
    }
    if (have_needs) {
      if (needs.scratch_bytes > plan.scratch_bytes)
        fail("cpu runtime: {}: needs {} bytes of scratch per thread, the plan has {}", where, needs.scratch_bytes,
             plan.scratch_bytes);
      if (needs.n_ctx > 0 && n_ctx_ > needs.n_ctx)
        fail("cpu runtime: {}: the plan admits positions up to {} but the cache holds {}", where, n_ctx_ - 1, needs.n_ctx);
    }

    const size_t buf0 = buf_ptrs_.size();
    for (size_t b = 0; b < s.bufs.size(); ++b) {
      const uint64_t need = have_needs ? needs.buf_bytes[b] : 0;
      const bool nullable = !have_needs || needs.nullable[b];
      buf_ptrs_.push_back(resolve(s.bufs[b], need, nullable, fmt::format("{} operand {}", where, b)));
    }
    const size_t int0 = ints_.size(), float0 = floats_.size();
    ints_.insert(ints_.end(), s.ints.begin(), s.ints.end());
    floats_.insert(floats_.end(), s.floats.begin(), s.floats.end());

    auto [it, inserted] = slots.try_emplace(s.label.empty() ? s.kernel : s.label, profile_labels_.size());
    if (inserted) profile_labels_.push_back(it->first);
    rt.profile_slot = it->second;
    steps_.push_back(rt);

    for (int t = 0; t < T; ++t) {
      NibbleKernelArgs a{};
      a.bufs = buf_ptrs_.data() + buf0;
      a.ints = ints_.data() + int0;
      a.floats = floats_.data() + float0;
      a.n_tokens = 0;
      a.scratch = plan.scratch_bytes ? scratch_.get() + scratch_stride * uint64_t(t) : nullptr;
      args_.push_back(a);
    }
  }
  profile_ns_.assign(profile_labels_.size(), 0);
  profile_calls_.assign(profile_labels_.size(), 0);

  uint64_t logits_bytes = 0;
  if (__builtin_mul_overflow(uint64_t(max_tokens_), uint64_t(n_vocab_) * 4, &logits_bytes))
    fail("cpu runtime: logits size overflows");
  logits_ = static_cast<const float*>(resolve(plan.logits, logits_bytes, false, "logits"));
}

CpuExecutor::~CpuExecutor() = default;

std::span<std::byte> CpuExecutor::state(size_t index) {
  if (index >= states_.size()) fail("cpu runtime: state index {} out of range ({} states)", index, states_.size());
  return {states_[index].get(), size_t(state_bytes_[index])};
}

void CpuExecutor::reset() {
  for (size_t i = 0; i < states_.size(); ++i) std::memset(states_[i].get(), 0, size_t(state_bytes_[i]));
}

std::span<const float> CpuExecutor::forward(const int32_t* tokens, const int32_t* pos, int64_t n) {
  if (n < 0 || n > max_tokens_)
    fail("cpu runtime: forward of {} tokens: at most max_tokens = {} per call (use forward_chunked)", n, max_tokens_);
  if (n == 0) return {};
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= n_vocab_)
      fail("cpu runtime: token id {} (index {}) is outside the vocabulary [0, {})", tokens[i], i, n_vocab_);
    if (pos[i] < 0 || pos[i] >= n_ctx_)
      fail("cpu runtime: position {} (index {}) is outside the context [0, {})", pos[i], i, n_ctx_);
  }
  std::memcpy(tokens_.get(), tokens, size_t(n) * 4);
  std::memcpy(pos_.get(), pos, size_t(n) * 4);
  if (poison_) std::memset(arena_.get(), 0xFF, size_t(arena_bytes_));
  if (n != last_n_) {
    for (NibbleKernelArgs& a : args_) a.n_tokens = n;
    last_n_ = n;
  }

  const int T = pool_.size();
  for (size_t si = 0; si < steps_.size(); ++si) {
    const StepRt& s = steps_[si];
    const int64_t n_tasks = s.tasks + s.tasks_per_token * n;
    if (n_tasks <= 0) continue;
    const NibbleKernelFn fn = s.batch_fn && n >= s.batch_from ? s.batch_fn : s.fn;
    const NibbleKernelArgs* args = args_.data() + si * size_t(T);
    auto body = [fn, args](int64_t b, int64_t e, int t) { fn(args + t, b, e); };
    if (!profiling_) {
      pool_.parallel_for(n_tasks, body);
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      pool_.parallel_for(n_tasks, body);
      const auto t1 = std::chrono::steady_clock::now();
      profile_ns_[s.profile_slot] += std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
      ++profile_calls_[s.profile_slot];
    }
  }
  return {logits_, size_t(n * n_vocab_)};
}

std::span<const float> CpuExecutor::forward_chunked(const int32_t* tokens, const int32_t* pos, int64_t n,
                                                    const ChunkFn& on_chunk) {
  if (n < 0) fail("cpu runtime: forward of {} tokens", n);
  std::span<const float> last;
  for (int64_t first = 0; first < n; first += max_tokens_) {
    const int64_t len = std::min(max_tokens_, n - first);
    std::span<const float> logits = forward(tokens + first, pos + first, len);
    if (on_chunk) on_chunk(first, len, logits);
    last = logits.subspan(size_t((len - 1) * n_vocab_), size_t(n_vocab_));
  }
  return last;
}

std::vector<StepProfile> CpuExecutor::profile() const {
  std::vector<StepProfile> r;
  for (size_t i = 0; i < profile_labels_.size(); ++i)
    if (profile_calls_[i]) r.push_back({profile_labels_[i], profile_calls_[i], double(profile_ns_[i]) * 1e-9});
  std::stable_sort(r.begin(), r.end(), [](const StepProfile& a, const StepProfile& b) { return a.seconds > b.seconds; });
  return r;
}

std::string CpuExecutor::profile_report() const {
  const std::vector<StepProfile> p = profile();
  double total = 0;
  for (const StepProfile& s : p) total += s.seconds;
  std::string out = fmt::format("{:>10} {:>6} {:>8} {:>10}  {}\n", "ms", "%", "calls", "us/call", "step");
  for (const StepProfile& s : p)
    out += fmt::format("{:>10.3f} {:>6.1f} {:>8} {:>10.2f}  {}\n", s.seconds * 1e3, total > 0 ? 100 * s.seconds / total : 0.0,
                       s.calls, s.seconds * 1e6 / double(s.calls), s.label);
  out += fmt::format("{:>10.3f} {:>6.1f} {:>8} {:>10}  total\n", total * 1e3, 100.0, "", "");
  return out;
}

void CpuExecutor::clear_profile() {
  std::fill(profile_ns_.begin(), profile_ns_.end(), 0);
  std::fill(profile_calls_.begin(), profile_calls_.end(), 0);
}

}  // namespace nibble::rt
