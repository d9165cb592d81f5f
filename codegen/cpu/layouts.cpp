// Kernel names and weight layouts: the parts of the CPU code generator that need no LLVM.
#include <cstring>

#include <fmt/format.h>

#include "codegen/cpu/cpu_jit.h"
#include "support/error.h"

namespace nibble::cpu {

int HostCpu::vector_bits() const {
  if (avx512f && avx512bw) return 512;
  if (avx2) return 256;
  return 128;
}

std::set<std::string> HostCpu::feature_set() const {
  std::set<std::string> s;
  const std::pair<bool, const char*> all[] = {{avx2, "avx2"},         {fma, "fma"},
                                              {f16c, "f16c"},         {avx512f, "avx512f"},
                                              {avx512bw, "avx512bw"}, {avx512vl, "avx512vl"},
                                              {avx512vnni, "avx512vnni"}, {avxvnni, "avxvnni"}};
  for (auto& [on, name] : all)
    if (on) s.insert(name);
  return s;
}

std::string QMatmulKernel::symbol() const {
  std::string s = fmt::format("qmatmul_{}_{}_{}_r{}_u{}_v{}", dtype_name(weight), dtype_name(act), layout,
                              sched.rows_per_task, sched.k_unroll, sched.vector_bits);
  s += sched.gemm ? fmt::format("_gemm_m{}", sched.m_tile) : std::string("_gemv");
  if (bias) s += "_bias";
  if (residual) s += "_res";
  return s;
}

namespace {

// R of "rows_xR", 1 for "rows", 0 when unknown.
int interleave_of(const std::string& layout) {
  if (layout == "rows") return 1;
  for (int r : {2, 4, 8, 16})
    if (layout == fmt::format("rows_x{}", r)) return r;
  return 0;
}

template <bool kPack>
std::vector<uint8_t> permute(DType weight, const std::string& layout, const void* data, int64_t N, int64_t K) {
  if (!layout_supported(weight, layout)) fail("repack_weight: layout '{}' is not supported for {}", layout, dtype_name(weight));
  const DTypeInfo& info = dtype_info(weight);
  if (N < 0 || K < 0 || K % info.block_size != 0)
    fail("repack_weight: bad shape {}x{} for {} (block size {})", N, K, info.name, info.block_size);
  const int64_t nb = K / info.block_size, bpb = info.bytes_per_block;
  const int64_t total = N * nb * bpb;
  std::vector<uint8_t> out(static_cast<size_t>(total));
  const auto* src = static_cast<const uint8_t*>(data);
  const int64_t R = interleave_of(layout);
  if (R == 1) {
    if (total) std::memcpy(out.data(), src, size_t(total));
    return out;
  }
  for (int64_t g = 0; g * R < N; ++g) {
    const int64_t rg = std::min<int64_t>(R, N - g * R);
    const int64_t base = g * R * nb * bpb;
    for (int64_t i = 0; i < rg; ++i)
      for (int64_t j = 0; j < nb; ++j) {
        const int64_t rows_off = base + (i * nb + j) * bpb;    // row-major position
        const int64_t inter_off = base + (j * rg + i) * bpb;   // interleaved position
        if constexpr (kPack) std::memcpy(out.data() + inter_off, src + rows_off, size_t(bpb));
        else std::memcpy(out.data() + rows_off, src + inter_off, size_t(bpb));
      }
  }
  return out;
}

}  // namespace

bool layout_supported(DType weight, const std::string& layout) {
  const int r = interleave_of(layout);
  if (r == 0) return false;
  if (r == 1) return true;
  // Interleaving is for block formats (the quantized weights of the int8 dot-product kernels).
  switch (weight) {
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0:
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

std::vector<uint8_t> repack_weight(DType weight, const std::string& layout, const void* data, int64_t N, int64_t K) {
  return permute<true>(weight, layout, data, N, K);
}

std::vector<uint8_t> unpack_weight(DType weight, const std::string& layout, const void* data, int64_t N, int64_t K) {
  return permute<false>(weight, layout, data, N, K);
}

}  // namespace nibble::cpu
