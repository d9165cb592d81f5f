// The CPU code generator: LLVM-JIT kernels for everything format-specific (quantized matmuls,
// activation quantizers, embedding row decoders), compiled for the host CPU (or a named one) with
// ORC LLJIT, cached on disk. Kernels follow runtime/cpu/kernel_abi.h; their arguments are in
// docs/cpu-backend.md ("JIT kernels").
//
// This header includes no LLVM headers.
#pragma once
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ir/dtype.h"
#include "runtime/cpu/kernel_abi.h"

namespace nibble::cpu {

// The CPU a JIT compiles for: its LLVM name and the features the kernels care about.
struct HostCpu {
  std::string name, triple, features_string;
  bool avx2 = false, fma = false, f16c = false, avx512f = false, avx512bw = false, avx512vl = false,
       avx512vnni = false, avxvnni = false;
  int vector_bits() const;  // 512 (AVX-512 F+BW), 256 (AVX2), else 128
  std::set<std::string> feature_set() const;  // the enabled features above, by LLVM name ("avx2", ...)
};

HostCpu detect_host();  // via llvm::sys::getHostCPUName / getHostCPUFeatures
HostCpu named_cpu(const std::string& name);  // an LLVM cpu name ("sapphirerapids", "x86-64-v3"); throws if unknown

struct MatmulSchedule {
  int rows_per_task = 16;  // output columns (weight rows) per task
  int k_unroll = 1;        // blocks per inner-loop iteration
  int vector_bits = 256;   // requested vector width (clamped to the target's)
  bool gemm = false;       // tiles of m_tile tokens reuse each decoded weight block
  int m_tile = 4;          // tokens per tile on the gemm path
};

struct QMatmulKernel {
  DType weight;
  DType act;                    // dtype_info(weight).vec_dot_type; f32 also for f16 / bf16 weights
  std::string layout = "rows";  // "rows" or "rows_xR", R in {2, 4, 8, 16}
  MatmulSchedule sched;
  bool bias = false, residual = false;
  std::string symbol() const;  // encodes every field: equal symbols mean equal kernels
};

// Weight layouts. "rows": GGUF order. "rows_xR": rows in groups of R (the last group holds the
// N % R leftover rows when N is not a multiple of R); within a group, block j of each of the group's
// rows is stored adjacently (row 0's block j, row 1's block j, ...), then block j + 1. Whole blocks
// move, so the layout is the same for every quantized format. Same size as the input.
bool layout_supported(DType weight, const std::string& layout);
std::vector<uint8_t> repack_weight(DType weight, const std::string& layout, const void* data, int64_t N, int64_t K);
// The inverse of repack_weight (for tests and tools).
std::vector<uint8_t> unpack_weight(DType weight, const std::string& layout, const void* data, int64_t N, int64_t K);

struct JitStats {
  int kernels = 0, cache_hits = 0;  // kernels made available; of those, loaded from the disk cache
  double emit_ms = 0, optimize_ms = 0, codegen_ms = 0;  // IR emission, O3, object code + JIT link (summed
                                                        // over the compile threads)
  double wall_ms = 0;                                   // added: elapsed time of compile() calls
};

// Per-thread scratch (args->scratch, 64-byte aligned) a qmatmul kernel needs for inner dimension K:
// the 16-row gemm path (quantized weights, sched.gemm, on AVX512-VNNI) keeps its decoded weight
// panel and a chunk's repacked activations there. 0 for kernels that need none. Conservative: it
// does not depend on the CPU the kernel is compiled for.
uint64_t qmatmul_scratch_bytes(const QMatmulKernel& k, int64_t K);

// Requests and compile() are not thread-safe (one thread drives a CpuJit); the kernels it returns
// are (each call writes only the outputs of its task range). Other kernels ignore args->scratch.
class CpuJit {
 public:
  struct Options {
    std::string cache_dir;  // empty: no disk cache
    std::string cpu;        // empty: host; else an LLVM cpu name to target (e.g. "x86-64-v3", "x86-64")
  };
  explicit CpuJit(Options o = {});
  ~CpuJit();
  CpuJit(const CpuJit&) = delete;
  CpuJit& operator=(const CpuJit&) = delete;

  const HostCpu& target() const;  // features of the CPU the code is compiled for
  std::string request_qmatmul(const QMatmulKernel& k);  // returns its symbol; emission deferred
  std::string request_quantize(DType act);              // q8_0, q8_1, q8_k, f16, bf16: bit-exact with activation_quantize_row
  std::string request_get_rows(DType table);            // any decodable type, bit-exact with dequantize_row
  // Emits all pending kernels, optimizes (O3) for the target CPU and JITs them: one module per weight
  // format (plus one for the codecs), compiled in parallel. With a cache_dir, each module's object
  // code is looked up / stored there, keyed by (its kernel symbols, cpu name and features, generator
  // and LLVM version).
  void compile();
  NibbleKernelFn lookup(const std::string& symbol) const;  // throws nibble::Error if unknown
  JitStats stats() const;
  // The relocatable object code of every module compiled so far (ELF on Linux): self-contained
  // kernels a plan file carries and runtime/cpu/object_loader.h loads without LLVM.
  const std::vector<std::vector<uint8_t>>& object_code() const;

  // Added: threads compile() uses (0, the default: the hardware's, at most 4). Kernels of one weight
  // format share a module (its tile functions, its cache entry); modules compile in parallel.
  void set_compile_threads(int n);

  // Added: the LLVM IR of the given kernels (after O3 when optimized), for inspection and tests.
  std::string dump_ir(const std::vector<std::string>& symbols, bool optimized) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace nibble::cpu
