// plan-buffers: places every op result that needs storage in one arena, reusing bytes of buffers
// that are dead.
//
// Storage: each op result except aliases, which own no bytes:
//   reshape  -> its operand's buffer (the operand then stays live until the reshape's last use),
//   kv_write -> its cache, weight -> the weight's bytes, state -> the state buffer;
//   function arguments live outside the arena (the caller's inputs).
// Size: from the result type with every symbolic dim (n_tokens) = PassOptions.max_tokens;
//   rows * row_bytes(dtype, last dim), so quantized activations take their block bytes;
//   rounded up to 64 bytes (cache lines, aligned vector loads).
// Live interval: [index of the defining op, index of the last op reading it or an alias of it];
//   a function result stays live past the last op. Intervals are closed, so an op's output never
//   shares bytes with its inputs.
// Placement: greedy first-fit by size: buffers sorted by size (largest first, then by definition),
//   each at the lowest 64-byte-aligned offset free over its whole interval.
// Output: op attr arena_offset (bytes); module attrs arena_bytes (max over functions), max_tokens,
//   and peak_activation_bytes (the most bytes live at once: the lower bound arena_bytes is held to).
#include <algorithm>
#include <unordered_map>

#include "passes/pass.h"

namespace nibble {

namespace {

constexpr int64_t kAlign = 64;

int64_t align_up(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

bool is_alias(const Op& op) {
  const std::string& n = op.op_name();
  return n == "reshape" || n == "kv_write" || n == "weight" || n == "state";
}

// The op owning the bytes `v` refers to, or null when they live outside the arena.
const Op* owner(const Value* v) {
  while (v->def && v->def->op_name() == "reshape") v = v->def->operand(0);
  if (!v->def || is_alias(*v->def)) return nullptr;
  return v->def;
}

int64_t buffer_bytes(const TensorType& t, int64_t max_tokens) {
  auto dim = [&](const Dim& d) { return d.is_static() ? d.value : max_tokens; };
  if (t.rank() == 0) return row_bytes(t.dtype, 1);
  int64_t rows = 1;
  for (int i = 0; i + 1 < t.rank(); ++i) rows *= dim(t.dims[i]);
  return rows * row_bytes(t.dtype, dim(t.dims.back()));
}

struct Buffer {
  Op* op;
  int64_t size;        // aligned
  int64_t begin, end;  // live op indices, inclusive
  int64_t offset = -1;
};

class PlanBuffers : public Pass {
 public:
  void run(Module& m, const PassOptions& opts) override {
    int64_t arena = 0, peak = 0;
    for (auto& f : m.functions) {
      std::vector<Buffer> bufs;
      std::unordered_map<const Op*, size_t> index_of;
      int64_t i = 0;
      for (auto& op : f->ops) {
        op->attrs.erase("arena_offset");
        for (const Value* u : op->operands)
          if (const Op* o = owner(u)) bufs[index_of.at(o)].end = i;
        if (!is_alias(*op)) {
          index_of[op.get()] = bufs.size();
          bufs.push_back({op.get(), align_up(buffer_bytes(op->type, opts.max_tokens)), i, i});
        }
        ++i;
      }
      for (const Value* r : f->results)
        if (const Op* o = owner(r)) bufs[index_of.at(o)].end = i;  // read by the caller after the last op

      arena = std::max(arena, place(bufs));
      peak = std::max(peak, peak_live(bufs, i + 1));
      for (const Buffer& b : bufs) b.op->attrs.set("arena_offset", b.offset);
    }
    m.attrs.set("arena_bytes", arena);
    m.attrs.set("max_tokens", opts.max_tokens);
    m.attrs.set("peak_activation_bytes", peak);
  }

 private:
  // First-fit by size; returns the arena size.
  static int64_t place(std::vector<Buffer>& bufs) {
    std::vector<Buffer*> order;
    for (Buffer& b : bufs) order.push_back(&b);
    std::stable_sort(order.begin(), order.end(), [](const Buffer* a, const Buffer* b) { return a->size > b->size; });
    std::vector<const Buffer*> placed;
    int64_t arena = 0;
    for (Buffer* b : order) {
      // The placed buffers live at the same time as b, by offset.
      std::vector<const Buffer*> clash;
      for (const Buffer* p : placed)
        if (p->begin <= b->end && b->begin <= p->end) clash.push_back(p);
      std::sort(clash.begin(), clash.end(), [](const Buffer* x, const Buffer* y) { return x->offset < y->offset; });
      int64_t at = 0;
      for (const Buffer* p : clash) {
        if (at + b->size <= p->offset) break;
        at = std::max(at, p->offset + p->size);
      }
      b->offset = at;
      arena = std::max(arena, at + b->size);
      placed.push_back(b);
    }
    return arena;
  }

  static int64_t peak_live(const std::vector<Buffer>& bufs, int64_t n_points) {
    std::vector<int64_t> live(size_t(n_points) + 1, 0);
    for (const Buffer& b : bufs) {
      live[b.begin] += b.size;
      live[b.end + 1] -= b.size;
    }
    int64_t cur = 0, peak = 0;
    for (int64_t v : live) peak = std::max(peak, cur += v);
    return peak;
  }
};

}  // namespace

extern const PassInfo kPlanBuffersPass = {
    "plan-buffers", "liveness-based placement of activations in one arena (arena_offset, arena_bytes)",
    [] { return std::make_unique<PlanBuffers>(); }};

}  // namespace nibble
