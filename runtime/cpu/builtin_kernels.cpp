// The built-in kernel table and the load-time checks of built-in steps.
#include "runtime/cpu/builtin_kernels.h"

#include <array>
#include <utility>

#include "support/error.h"

namespace nibble::rt {

namespace {

constexpr std::array<std::pair<std::string_view, NibbleKernelFn>, 15> kTable{{
    {"add_f32", kern::add_f32},
    {"mul_f32", kern::mul_f32},
    {"swiglu_f32", kern::swiglu_f32},
    {"silu_f32", kern::silu_f32},
    {"gelu_f32", kern::gelu_f32},
    {"rms_norm_f32", kern::rms_norm_f32},
    {"layer_norm_f32", kern::layer_norm_f32},
    {"softmax_f32", kern::softmax_f32},
    {"rope_f32", kern::rope_f32},
    {"kv_write_f16", kern::kv_write_f16},
    {"kv_write_f32", kern::kv_write_f32},
    {"attention_f16", kern::attention_f16},
    {"attention_f32", kern::attention_f32},
    {"argmax_f32", kern::argmax_f32},
    {"copy_bytes", kern::copy_bytes},
}};

constexpr std::array<std::string_view, kTable.size()> kNames = [] {
  std::array<std::string_view, kTable.size()> n{};
  for (size_t i = 0; i < kTable.size(); ++i) n[i] = kTable[i].first;
  return n;
}();

// Byte counts from plan parameters: overflow is a bad plan, not a wrap-around.
uint64_t bytes(std::string_view sym, std::initializer_list<int64_t> factors) {
  uint64_t r = 1;
  for (int64_t f : factors) {
    if (f < 0) fail("kernel {}: negative size parameter {}", sym, f);
    if (__builtin_mul_overflow(r, uint64_t(f), &r)) fail("kernel {}: operand size overflows", sym);
  }
  return r;
}

}  // namespace

NibbleKernelFn find_builtin_kernel(std::string_view symbol) {
  for (const auto& [name, fn] : kTable)
    if (name == symbol) return fn;
  return nullptr;
}

std::span<const std::string_view> builtin_kernel_names() { return kNames; }

BuiltinNeeds builtin_needs(std::string_view sym, size_t n_bufs, std::span<const int64_t> ints,
                           std::span<const float> floats, int64_t tasks, int64_t tasks_per_token,
                           int64_t max_tokens) {
  auto expect = [&](size_t nb, size_t ni, size_t nf) {
    if (n_bufs != nb || ints.size() < ni || floats.size() < nf)
      fail("kernel {}: expects {} buffers, {} ints, {} floats; the step has {}, {}, {}", sym, nb, ni, nf, n_bufs,
           ints.size(), floats.size());
    for (size_t i = 0; i < ni; ++i)
      if (ints[i] < 0) fail("kernel {}: int parameter {} is negative ({})", sym, i, ints[i]);
  };
  if (tasks < 0 || tasks_per_token < 0) fail("kernel {}: negative task count", sym);
  const int64_t n = int64_t(bytes(sym, {tasks_per_token, max_tokens}) + uint64_t(tasks));
  BuiltinNeeds r;
  auto set = [&](std::initializer_list<uint64_t> b, std::initializer_list<bool> nullable = {}) {
    r.buf_bytes.assign(b);
    r.nullable.assign(r.buf_bytes.size(), false);
    size_t i = 0;
    for (bool x : nullable) r.nullable[i++] = x;
  };
  if (sym == "add_f32" || sym == "mul_f32") {
    expect(3, 2, 0);
    const int64_t C = ints[0], b_rows = ints[1];
    const uint64_t rows = bytes(sym, {n, C, 4});
    set({rows, bytes(sym, {b_rows > 0 ? b_rows : n, C, 4}), rows});
  } else if (sym == "swiglu_f32") {
    expect(3, 1, 0);
    const uint64_t rows = bytes(sym, {n, ints[0], 4});
    set({rows, rows, rows});
  } else if (sym == "silu_f32" || sym == "gelu_f32") {
    expect(2, 1, 0);
    const uint64_t rows = bytes(sym, {n, ints[0], 4});
    set({rows, rows});
  } else if (sym == "rms_norm_f32") {
    expect(3, 1, 1);
    const uint64_t rows = bytes(sym, {n, ints[0], 4});
    set({rows, bytes(sym, {ints[0], 4}), rows}, {false, true});
  } else if (sym == "layer_norm_f32") {
    expect(4, 1, 1);
    const uint64_t rows = bytes(sym, {n, ints[0], 4}), row = bytes(sym, {ints[0], 4});
    set({rows, row, row, rows}, {false, true, true});
  } else if (sym == "softmax_f32") {
    expect(3, 2, 1);
    const uint64_t rows = bytes(sym, {n, ints[0], 4});
    set({rows, bytes(sym, {ints[1] > 0 ? ints[1] : 1, ints[0], 4}), rows}, {false, true});
  } else if (sym == "rope_f32") {
    expect(3, 4, 2);
    const int64_t heads = ints[0], hd = ints[1], n_dims = ints[2];
    if (n_dims % 2 != 0 || n_dims > hd) fail("kernel {}: n_dims {} must be even and at most head_dim {}", sym, n_dims, hd);
    const uint64_t x = bytes(sym, {n, heads, hd, 4});
    set({x, bytes(sym, {n, 4}), x});
  } else if (sym == "kv_write_f16" || sym == "kv_write_f32") {
    expect(3, 2, 0);
    const int64_t row = ints[0];
    r.n_ctx = ints[1];
    set({bytes(sym, {n, row, 4}), bytes(sym, {n, 4}), bytes(sym, {r.n_ctx, row, sym == "kv_write_f16" ? 2 : 4})});
  } else if (sym == "attention_f16" || sym == "attention_f32") {
    expect(5, 4, 1);
    const int64_t H = ints[0], H_kv = ints[1], d = ints[2];
    r.n_ctx = ints[3];
    if (H == 0 || H_kv == 0 || H % H_kv != 0) fail("kernel {}: heads {} must be a positive multiple of kv heads {}", sym, H, H_kv);
    if (tasks % H != 0 || tasks_per_token % H != 0)
      fail("kernel {}: tasks ({} + {} per token) must be a multiple of the {} heads", sym, tasks, tasks_per_token, H);
    const int64_t tokens = n / H;
    const uint64_t q = bytes(sym, {tokens, H, d, 4});
    const uint64_t kv = bytes(sym, {r.n_ctx, H_kv, d, sym == "attention_f16" ? 2 : 4});
    set({q, kv, kv, bytes(sym, {tokens, 4}), q});
    r.scratch_bytes = attention_scratch_bytes(r.n_ctx, d);
  } else if (sym == "argmax_f32") {
    expect(2, 1, 0);
    set({bytes(sym, {n, ints[0], 4}), bytes(sym, {n, 4})});
  } else if (sym == "copy_bytes") {
    expect(2, 1, 0);
    const uint64_t rows = bytes(sym, {n, ints[0]});
    set({rows, rows});
  } else {
    fail("no built-in kernel '{}'", sym);
  }
  return r;
}

}  // namespace nibble::rt
