// Vulkan matmul kernels (codegen/spirv) vs a naive shader (one invocation per output element,
// dequantize-then-multiply, no cooperation), in one run, next to llama.cpp's Vulkan backend on
// lavapipe (../shared/docs/baselines.md, m = k = 4096). GEMV: one token; batch: n tokens (the
// backend's batch kernel: a shared-memory GEMM on GPUs, a multi-token GEMV on CPU devices).
//
//   vulkan_bench [--device N] [--formats q4_k,q4_0,q8_0,f32] [--m 4096] [--k 4096] [--n 512]
//                [--iters 5] [--min] [--cpu-time] [--no-batch] [--no-naive] [--verbose]
//                [--no-subgroup] [--no-storage16] [--no-storage8] [--no-float16]
//                [--gemv WG,ROWS,TOKENS] [--gemm-tiles BM,BN,BK,TM,TN] [--gemm-from N]
//
// Times are GPU timestamps of the matmul dispatch (median of --iters; --min: minimum). On lavapipe
// a "GPU" is the CPU's threads: on a busy machine timestamps include preemption, so --cpu-time
// reports the process's CPU time per call instead (lavapipe's 2 threads: wall ~ CPU / 2 when idle).
// Weights are random bytes with sane block scales (timing does not depend on the values).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "codegen/spirv/vulkan_model.h"
#include "ir/builder.h"
#include "support/error.h"
#include "support/fp16.h"

using namespace nibble;
using namespace nibble::vk;

namespace {

struct Args {
  int device = 0;
  std::vector<std::string> formats = {"q4_k", "q4_0", "q8_0", "f32"};
  int64_t m = 4096, k = 4096, n = 512;
  int iters = 5;
  bool batch = true, naive = true, use_min = false, cpu_time = false, verbose = false;
  FeatureOverrides features;
  bool tiles_given = false;
  GemvTiles gemv;
  GemmTiles gemm;
  int64_t gemm_from = -1;
};

std::vector<uint8_t> random_weight(DType t, int64_t rows, int64_t K, std::mt19937& rng) {
  std::vector<uint8_t> w(size_t(rows * row_bytes(t, K)));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : w) b = uint8_t(byte(rng));
  auto set16 = [&](size_t off, float v) {
    uint16_t h = f32_to_fp16(v);
    std::memcpy(w.data() + off, &h, 2);
  };
  std::normal_distribution<float> nd(0.0f, 0.05f);
  if (t == DType::F32) {
    for (int64_t i = 0; i < rows * K; ++i) {
      float v = nd(rng);
      std::memcpy(w.data() + 4 * i, &v, 4);
    }
    return w;
  }
  if (t == DType::F16 || t == DType::BF16) {
    for (int64_t i = 0; i < rows * K; ++i) set16(size_t(2 * i), nd(rng));
    return w;
  }
  const DTypeInfo& info = dtype_info(t);
  for (int64_t b = 0; b < rows * K / info.block_size; ++b) {
    size_t o = size_t(b * info.bytes_per_block);
    switch (t) {
      case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: set16(o, 0.01f); break;
      case DType::Q4_1: case DType::Q5_1: set16(o, 0.01f); set16(o + 2, -0.05f); break;
      case DType::Q4_K: case DType::Q5_K: set16(o, 0.001f); set16(o + 2, 0.001f); break;
      case DType::Q2_K: set16(o + 80, 0.001f); set16(o + 82, 0.001f); break;
      case DType::Q3_K: set16(o + 108, 0.001f); break;
      case DType::Q6_K: set16(o + 208, 0.0001f); break;
      default: break;
    }
  }
  return w;
}

// y = qmatmul(x[n, K], w[M, K]) with x from an f32 table; returns the matmul's time per call.
double run(const Args& a, std::shared_ptr<Context> ctx, DType t, const std::vector<uint8_t>& wbytes,
           const std::vector<float>& table, int64_t n, int iters, bool naive) {
  Module m;
  m.name = "bench";
  Function* f = m.add_function("forward");
  Builder b(m, *f);
  Value* tokens = f->add_arg("tokens", {DType::I32, {Dim::sym("n_tokens")}});
  f->add_arg("pos", {DType::I32, {Dim::sym("n_tokens")}});
  b.declare_weight("table", {DType::F32, {n, a.k}}).data = table.data();
  b.declare_weight("w", {t, {a.m, a.k}}).data = wbytes.data();
  f->results.push_back(b.create("qmatmul", {b.create("embedding", {b.weight("table"), tokens}), b.weight("w")}));
  VulkanOptions o;
  o.context = std::move(ctx);
  o.profile = true;
  o.max_tokens = n;
  o.features = a.features;
  o.compile.naive_matmul = naive;
  o.compile.auto_tiles = !a.tiles_given;
  o.compile.gemv = a.gemv;
  o.compile.gemm = a.gemm;
  if (a.gemm_from >= 0) o.compile.gemm_from = a.gemm_from;
  auto vm = VulkanModel::create(m, o);
  std::vector<int32_t> ids(static_cast<size_t>(n)), pos(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = pos[size_t(i)] = int32_t(i);
  auto w0 = std::chrono::steady_clock::now();
  vm->forward(ids, pos);  // warm-up: lavapipe compiles shaders at their first dispatch
  if (a.verbose)
    std::fprintf(stderr, "  [%s n=%lld%s: pipelines %.1f ms, first call %.1f ms]\n", dtype_name(t), (long long)n,
                 naive ? " naive" : "", vm->executor().pipeline_seconds() * 1e3,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count() * 1e3);
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    vm->executor().clear_profile();
    timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    vm->forward(ids, pos);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    if (a.cpu_time) {
      times.push_back(double(c1.tv_sec - c0.tv_sec) + 1e-9 * double(c1.tv_nsec - c0.tv_nsec));
      continue;
    }
    for (const KernelProfile& p : vm->executor().profile())
      if (p.label.rfind("qmatmul", 0) == 0 || p.label.rfind("naive", 0) == 0) times.push_back(p.seconds);
  }
  if (times.empty()) return 0;
  std::sort(times.begin(), times.end());
  return a.use_min ? times.front() : times[times.size() / 2];
}

// llama.cpp's Vulkan backend on lavapipe, m = k = 4096, 2 threads (baselines.md): GEMV / n = 512, ms.
const std::map<std::string, std::pair<double, double>> kLlamaLavapipe = {
    {"f32", {30, 3600}}, {"f16", {30, 4200}}, {"q8_0", {24, 4600}},
    {"q4_0", {17, 4900}}, {"q4_k", {20, 4200}}, {"q6_k", {76, 4000}}};

int usage() {
  std::fprintf(stderr,
               "usage: vulkan_bench [--device N] [--formats a,b] [--m M] [--k K] [--n N] [--iters I] [--min]\n"
               "                    [--cpu-time] [--no-batch] [--no-naive] [--verbose] [--no-subgroup]\n"
               "                    [--no-storage16] [--no-storage8] [--no-float16] [--gemv WG,ROWS,TOKENS]\n"
               "                    [--gemm-tiles BM,BN,BK,TM,TN] [--gemm-from N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string s = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw Error("missing value after " + s);
        return argv[++i];
      };
      if (s == "--device") a.device = std::stoi(next());
      else if (s == "--m") a.m = std::stoll(next());
      else if (s == "--k") a.k = std::stoll(next());
      else if (s == "--n") a.n = std::stoll(next());
      else if (s == "--iters") a.iters = std::max(1, std::stoi(next()));
      else if (s == "--min") a.use_min = true;
      else if (s == "--cpu-time") a.cpu_time = true;
      else if (s == "--no-batch") a.batch = false;
      else if (s == "--no-naive") a.naive = false;
      else if (s == "--verbose") a.verbose = true;
      else if (s == "--no-subgroup") a.features.subgroup = false;
      else if (s == "--no-storage16") a.features.storage16 = false;
      else if (s == "--no-storage8") a.features.storage8 = false;
      else if (s == "--no-float16") a.features.float16 = false;
      else if (s == "--gemm-from") a.gemm_from = std::stoll(next());
      else if (s == "--gemv") {
        std::string v = next();
        if (std::sscanf(v.c_str(), "%u,%u,%u", &a.gemv.wg, &a.gemv.rows, &a.gemv.tokens) != 3) return usage();
        a.tiles_given = true;
      } else if (s == "--gemm-tiles") {
        std::string v = next();
        if (std::sscanf(v.c_str(), "%u,%u,%u,%u,%u", &a.gemm.bm, &a.gemm.bn, &a.gemm.bk, &a.gemm.tm, &a.gemm.tn) != 5)
          return usage();
        a.tiles_given = true;
      } else if (s == "--formats") {
        a.formats.clear();
        std::string v = next();
        for (size_t p = 0; p <= v.size();) {
          size_t q = std::min(v.find(',', p), v.size());
          a.formats.push_back(v.substr(p, q - p));
          p = q + 1;
        }
      } else {
        return usage();
      }
    }
    auto ctx = Context::create({a.device, false});
    const DeviceInfo& d = ctx->info();
    const bool lavapipe = d.type == "cpu";
    std::printf("device: %s\n", d.summary().c_str());
    std::printf("matmul m = %lld, k = %lld; %s per matmul dispatch, %s of %d\n", (long long)a.m, (long long)a.k,
                a.cpu_time ? "process CPU time" : "GPU time (timestamps)", a.use_min ? "minimum" : "median", a.iters);
    std::printf("%-6s %-11s %12s %12s %8s %13s   %s\n", "format", "shape", "ours ms", "naive ms", "speedup", "throughput",
                lavapipe ? "llama.cpp lavapipe ms" : "");
    std::mt19937 rng(42);
    for (const std::string& fs : a.formats) {
      auto t = dtype_from_name(fs);
      if (!t) throw Error("unknown format " + fs);
      std::vector<uint8_t> w = random_weight(*t, a.m, a.k, rng);
      for (int64_t n : {int64_t(1), a.n}) {
        if (n > 1 && !a.batch) continue;
        std::vector<float> table(size_t(n * a.k));
        std::normal_distribution<float> nd(0.0f, 1.0f);
        for (float& v : table) v = nd(rng);
        const int iters = n > 1 ? std::max(1, a.iters / 2) : a.iters;
        double ours = run(a, ctx, *t, w, table, n, iters, false);
        double naive = a.naive ? run(a, ctx, *t, w, table, n, 1, true) : 0;
        std::string rate = n == 1 ? fmt::format("{:.2f} GB/s", double(w.size()) / ours * 1e-9)
                                  : fmt::format("{:.2f} GF/s", 2.0 * double(a.m * a.k * n) / ours * 1e-9);
        std::string ref;
        auto it = kLlamaLavapipe.find(fs);
        if (lavapipe && it != kLlamaLavapipe.end() && a.m == 4096 && a.k == 4096 && (n == 1 || n == 512))
          ref = fmt::format("{:.0f}", n == 1 ? it->second.first : it->second.second);
        std::printf("%-6s %-11s %12.3f %12s %8s %13s   %s\n", fs.c_str(),
                    n == 1 ? "gemv" : fmt::format("batch n={}", n).c_str(), ours * 1e3,
                    a.naive ? fmt::format("{:.3f}", naive * 1e3).c_str() : "-",
                    a.naive ? fmt::format("{:.1f}x", naive / ours).c_str() : "-", rate.c_str(), ref.c_str());
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vulkan_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
