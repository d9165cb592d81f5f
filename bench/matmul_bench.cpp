// JIT matmul kernels (codegen/cpu) on this machine: GEMV (one token) and GEMM (128 tokens) for the
// main weight formats, on 1 and 2 threads, plus the JIT's compile time for a llama model's kernels.
//
//   build-jit/bin/matmul_bench [--benchmark_filter=...]
//
// Counters: GB/s = weight bytes read per second (GEMV weights rotate through >= 256 MiB of copies so
// they come from DRAM, not the 32 MiB L3, unless NIBBLE_BENCH_HOT=1); GFLOP/s = 2 M N K per second
// (integer ops for the quantized kernels); x_f32 = time of the f32 kernel of the same shape and
// thread count (same run) / this time; of_dram = GEMV weight GB/s / dram_read GB/s (same threads). The machine may be shared: figures are of the median
// iteration; best_* of the fastest one.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "codegen/cpu/cpu_jit.h"
#include "ir/dtype.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define NIBBLE_PAUSE() _mm_pause()
#else
#define NIBBLE_PAUSE() std::this_thread::yield()
#endif

namespace {
using namespace nibble;

// A minimal fork-join: run(f) calls f(i, n) on n threads (the caller is thread 0) and waits.
class ForkJoin {
 public:
  explicit ForkJoin(int n) : n_(n) {
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { loop(i); });
  }
  ~ForkJoin() {
    stop_.store(true);
    gen_.fetch_add(1, std::memory_order_release);
    for (auto& t : workers_) t.join();
  }
  void run(const std::function<void(int, int)>& f) {
    fn_ = &f;
    pending_.store(n_ - 1, std::memory_order_relaxed);
    gen_.fetch_add(1, std::memory_order_release);
    f(0, n_);
    for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) relax(spins);
  }
  // Spin briefly, then yield: on a shared machine a spinning waiter may hold the core its partner needs.
  static void relax(int spins) {
    if (spins < 4096) NIBBLE_PAUSE();
    else std::this_thread::yield();
  }

 private:
  void loop(int i) {
    uint64_t seen = 0;
    for (;;) {
      uint64_t g;
      for (int spins = 0; (g = gen_.load(std::memory_order_acquire)) == seen; ++spins) relax(spins);
      seen = g;
      if (stop_.load()) return;
      (*fn_)(i, n_);
      pending_.fetch_sub(1, std::memory_order_release);
    }
  }
  int n_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int, int)>* fn_ = nullptr;
};

struct Shape {
  int64_t M, N, K;
};

struct Config {
  DType w;
  std::string layout;
  cpu::MatmulSchedule sched;
};

// The activation type a model's product takes (fuse-dequant-matmul): ggml's vec_dot_type, f16 for f16.
DType act_of(DType w) { return dtype_info(w).vec_dot_type; }

cpu::QMatmulKernel kernel_of(const Config& c) {
  cpu::QMatmulKernel k;
  k.weight = c.w;
  k.act = act_of(c.w);
  k.layout = c.layout;
  k.sched = c.sched;
  return k;
}

// The configurations measured: the schedule a format uses on each path.
Config config_for(DType w, bool gemm) {
  Config c{w, "rows", {}};
  const bool quant = dtype_info(w).quantized;
  c.sched.vector_bits = 512;
  c.sched.gemm = gemm;
  if (gemm) {
    c.layout = quant ? "rows_x4" : "rows";
    c.sched.rows_per_task = 64;
    c.sched.m_tile = quant ? 8 : 4;  // select-tiles' choice on AVX512-VNNI
  } else {
    c.layout = quant ? "rows_x4" : "rows";
    c.sched.rows_per_task = 32;
    c.sched.k_unroll = 1;
  }
  if (const char* l = std::getenv(gemm ? "NIBBLE_BENCH_GEMM_LAYOUT" : "NIBBLE_BENCH_GEMV_LAYOUT"); l && quant) c.layout = l;
  if (const char* v = std::getenv("NIBBLE_BENCH_VBITS")) c.sched.vector_bits = std::atoi(v);
  if (const char* u = std::getenv("NIBBLE_BENCH_UNROLL")) c.sched.k_unroll = std::atoi(u);
  if (const char* m = std::getenv(gemm ? "NIBBLE_BENCH_MTILE" : "NIBBLE_BENCH_NONE")) c.sched.m_tile = std::atoi(m);
  if (const char* r = std::getenv(gemm ? "NIBBLE_BENCH_GEMM_RPT" : "NIBBLE_BENCH_GEMV_RPT")) c.sched.rows_per_task = std::atoi(r);
  return c;
}

cpu::CpuJit& jit() {
  static std::unique_ptr<cpu::CpuJit> j = std::make_unique<cpu::CpuJit>();
  return *j;
}

// Weights: a few quantized rows (reference quantizer) tiled over all rows, then repacked.
std::vector<uint8_t> make_weights(const Config& c, int64_t N, int64_t K, uint32_t seed) {
  const int64_t base_rows = 16, rb = row_bytes(c.w, K);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(size_t(base_rows * K));
  for (float& v : x) v = dist(rng);
  std::vector<uint8_t> base(size_t(base_rows * rb));
  for (int64_t r = 0; r < base_rows; ++r) dtype_info(c.w).quantize_row(x.data() + r * K, base.data() + r * rb, K);
  std::vector<uint8_t> rows(size_t(N * rb));
  for (int64_t r = 0; r < N; ++r) std::memcpy(rows.data() + r * rb, base.data() + (r % base_rows) * rb, size_t(rb));
  return cpu::repack_weight(c.w, c.layout, rows.data(), N, K);
}

std::map<std::string, double>& f32_times() {
  static std::map<std::string, double> m;
  return m;
}

// The machine's DRAM read bandwidth in the same run (1 GiB summed).
std::map<int, double>& dram_gbs() {
  static std::map<int, double> m;
  return m;
}

// Sums n words; 32-byte loads (AVX2 where there is one), 8 independent sums: far more load
// throughput than DRAM delivers.
#if defined(__x86_64__)
__attribute__((target("avx2"))) uint64_t sum_range_avx2(const uint64_t* p, size_t n) {
  __m256i acc[8];
  for (auto& a : acc) a = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 8; ++k)
      acc[k] = _mm256_add_epi64(acc[k], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4 * size_t(k))));
  alignas(32) uint64_t v[4];
  uint64_t s = 0;
  for (auto& a : acc) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(v), a);
    s += v[0] + v[1] + v[2] + v[3];
  }
  for (; i < n; ++i) s += p[i];
  return s;
}
#endif

uint64_t sum_range(const uint64_t* p, size_t n) {
#if defined(__x86_64__)
  static const bool avx2 = cpu::detect_host().avx2;
  if (avx2) return sum_range_avx2(p, n);
#endif
  typedef uint64_t v2 __attribute__((vector_size(16)));
  v2 acc[8] = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 8; ++k) {
      v2 x;
      std::memcpy(&x, p + i + 2 * size_t(k), 16);
      acc[k] += x;
    }
  uint64_t s = 0;
  for (auto& a : acc) s += a[0] + a[1];
  for (; i < n; ++i) s += p[i];
  return s;
}

void bm_dram_read(benchmark::State& state, int threads) {
  const size_t n = (size_t(1) << 30) / 8;
  static std::vector<uint64_t> buf(n, 1);
  ForkJoin pool(threads);
  std::vector<uint64_t> sink(size_t(threads) * 8);
  std::vector<double> times;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    pool.run([&](int t, int nt) {
      const size_t b = n * size_t(t) / size_t(nt), e = n * size_t(t + 1) / size_t(nt);
      sink[size_t(t) * 8] = sum_range(buf.data() + b, e - b);
    });
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  benchmark::DoNotOptimize(sink.data());
  const double gbs = double(n * 8) / times[times.size() / 2] * 1e-9;
  dram_gbs()[threads] = gbs;
  state.counters["GB/s"] = gbs;
  state.counters["best_GB/s"] = double(n * 8) / times.front() * 1e-9;
}

void bm_matmul(benchmark::State& state, Config c, Shape s, int threads) {
  const cpu::QMatmulKernel k = kernel_of(c);
  NibbleKernelFn fn = jit().lookup(k.symbol());
  const bool hot = std::getenv("NIBBLE_BENCH_HOT") != nullptr;
  const int64_t wbytes = row_bytes(c.w, s.K) * s.N;
  const int copies = (s.M > 1 || hot) ? 1 : int(std::max<int64_t>(1, (256ll << 20) / wbytes + 1));
  std::vector<std::vector<uint8_t>> w;
  for (int i = 0; i < copies; ++i) w.push_back(make_weights(c, s.N, s.K, 1));
  // Activations, quantized by the JIT's own quantizer.
  const DType at = act_of(c.w);
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(size_t(s.M * s.K));
  for (float& v : x) v = dist(rng);
  std::vector<uint8_t> a;
  if (at == DType::F32) {
    a.resize(x.size() * 4);
    std::memcpy(a.data(), x.data(), a.size());
  } else {
    a.resize(size_t(s.M * row_bytes(at, s.K)));
    NibbleKernelFn q = jit().lookup(std::string("quantize_") + dtype_name(at));
    const int64_t ints[] = {s.K};
    void* bufs[] = {x.data(), a.data()};
    NibbleKernelArgs args{bufs, ints, nullptr, s.M, nullptr};
    q(&args, 0, s.M);
  }
  std::vector<float> out(size_t(s.M * s.N));
  const int64_t tasks = (s.N + c.sched.rows_per_task - 1) / c.sched.rows_per_task;
  const int64_t ints[] = {s.N, s.K, s.M};
  ForkJoin pool(threads);
  // Per-thread scratch, as the runtime gives it (64-byte aligned, a page apart).
  const uint64_t scratch_stride = (cpu::qmatmul_scratch_bytes(k, s.K) + 4095) / 4096 * 4096;
  std::vector<uint8_t> scratch(size_t(scratch_stride) * size_t(threads) + 64);
  uint8_t* scratch0 = scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
  int next = 0;
  auto run_once = [&] {
    void* bufs[] = {w[size_t(next)].data(), a.data(), out.data()};
    next = (next + 1) % copies;
    pool.run([&](int t, int n) {
      NibbleKernelArgs args{bufs, ints, nullptr, s.M, scratch_stride ? scratch0 + scratch_stride * size_t(t) : nullptr};
      fn(&args, tasks * t / n, tasks * (t + 1) / n);
    });
  };
  for (int i = 0; i < copies + 1; ++i) run_once();  // warm up (and touch every copy)
  std::vector<double> times;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    run_once();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  // The machine is shared: the median is the figure, the best run shows what the kernel can do.
  std::sort(times.begin(), times.end());
  const double t = times[times.size() / 2], best = times.front();
  state.counters["GB/s"] = double(wbytes) / t * 1e-9;
  state.counters["GFLOP/s"] = 2.0 * double(s.M) * double(s.N) * double(s.K) / t * 1e-9;
  state.counters["best_ms"] = best * 1e3;
  state.counters["best_GB/s"] = double(wbytes) / best * 1e-9;
  state.counters["best_GFLOP/s"] = 2.0 * double(s.M) * double(s.N) * double(s.K) / best * 1e-9;
  if (s.M == 1 && dram_gbs().count(threads)) state.counters["of_dram"] = double(wbytes) / t * 1e-9 / dram_gbs()[threads];
  const std::string key = fmt::format("{}x{}x{}/t{}", s.M, s.N, s.K, threads);
  if (c.w == DType::F32) f32_times()[key] = t;  // medians
  else if (auto it = f32_times().find(key); it != f32_times().end()) state.counters["x_f32"] = it->second / t;
  state.SetLabel(fmt::format("{} {}", k.layout, k.symbol()));
}

// The machine's peaks in the same run: vpdpbusd (int8 dot, 2 ops per multiply-add) and FMA (f32), 512-bit,
// 12 independent chains per thread. Measured only where the host has the instructions.
#if defined(__x86_64__)
__attribute__((target("avx512f,avx512vnni"))) double peak_loop(bool int8, int64_t iters) {
  __m512i ai[12];
  __m512 af[12];
  for (int k = 0; k < 12; ++k) ai[k] = _mm512_set1_epi32(k), af[k] = _mm512_set1_ps(float(k));
  const __m512i x = _mm512_set1_epi32(0x01010101), y = _mm512_set1_epi32(0x02020202);
  const __m512 fx = _mm512_set1_ps(1.0f), fy = _mm512_set1_ps(0.5f);
  if (int8) {
    for (int64_t i = 0; i < iters; ++i)
      for (int k = 0; k < 12; ++k) ai[k] = _mm512_dpbusd_epi32(ai[k], x, y);
  } else {
    for (int64_t i = 0; i < iters; ++i)
      for (int k = 0; k < 12; ++k) af[k] = _mm512_fmadd_ps(af[k], fx, fy);
  }
  double sink = 0;
  alignas(64) int32_t iv[16];
  alignas(64) float fv[16];
  for (int k = 0; k < 12; ++k) {
    _mm512_store_si512(iv, ai[k]);
    _mm512_store_ps(fv, af[k]);
    sink += double(iv[0]) + double(fv[0]);
  }
  return sink;
}
#endif

void bm_peak(benchmark::State& state, bool int8, int threads) {
#if defined(__x86_64__)
  const cpu::HostCpu h = cpu::detect_host();
  if (!h.avx512f || !h.avx512vnni) {
    state.SkipWithError("needs AVX-512 VNNI");
    return;
  }
  const int64_t iters = 1 << 20;
  ForkJoin pool(threads);
  std::vector<double> times;
  std::vector<double> sink(static_cast<size_t>(threads));
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    pool.run([&](int t, int) { sink[size_t(t)] = peak_loop(int8, iters); });
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  benchmark::DoNotOptimize(sink.data());
  std::sort(times.begin(), times.end());
  // 16 lanes x 12 chains; an int8 dot lane does 4 multiply-adds (8 ops), an FMA lane 2 flops.
  const double ops = double(iters) * 12 * 16 * (int8 ? 8 : 2) * threads;
  state.counters[int8 ? "GOP/s" : "GFLOP/s"] = ops / times[times.size() / 2] * 1e-9;
  state.counters["best"] = ops / times.front() * 1e-9;
#else
  state.SkipWithError("x86 only");
#endif
}

// The activation quantizers (one thread): rows of K floats to q8_0 / q8_K blocks.
void bm_quantize(benchmark::State& state, DType act, int64_t M, int64_t K) {
  NibbleKernelFn q = jit().lookup(std::string("quantize_") + dtype_name(act));
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(M * K));
  for (float& v : x) v = dist(rng);
  std::vector<uint8_t> out(static_cast<size_t>(M * row_bytes(act, K)));
  const int64_t ints[] = {K};
  void* bufs[] = {x.data(), out.data()};
  NibbleKernelArgs args{bufs, ints, nullptr, M, nullptr};
  for (auto _ : state) q(&args, 0, M);
  state.counters["GB/s_in"] = benchmark::Counter(double(M * K * 4) * double(state.iterations()), benchmark::Counter::kIsRate) ;
}

// Compile time of the kernels a llama model (q4_K_M) needs: 7 qmatmul kernels, its quantizer and
// its embedding decoder; cold (no cache) and from the disk cache.
std::vector<std::string> request_llama(cpu::CpuJit& j) {
  std::vector<std::string> syms;
  auto mm = [&](DType w, const char* layout, bool gemm, bool res) {
    cpu::QMatmulKernel k;
    k.weight = w;
    k.act = act_of(w);
    k.layout = layout;
    k.sched.vector_bits = 512;
    k.sched.gemm = gemm;
    k.residual = res;
    syms.push_back(j.request_qmatmul(k));
  };
  mm(DType::Q4_K, "rows_x4", false, false);   // wq wk wv gate up
  mm(DType::Q4_K, "rows_x16", true, false);
  mm(DType::Q4_K, "rows_x4", false, true);    // wo (+ residual)
  mm(DType::Q4_K, "rows_x16", true, true);
  mm(DType::Q6_K, "rows_x4", false, true);    // ffn_down (+ residual)
  mm(DType::Q6_K, "rows_x16", true, true);
  mm(DType::Q6_K, "rows", false, false);      // output
  syms.push_back(j.request_quantize(DType::Q8_K));
  syms.push_back(j.request_get_rows(DType::Q4_K));
  return syms;
}

void bm_compile(benchmark::State& state, bool cached) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / fmt::format("nibble_bench_cache_{}", ::getpid());
  cpu::JitStats last;
  for (auto _ : state) {
    state.PauseTiming();
    if (!cached) fs::remove_all(dir);
    else if (!fs::exists(dir)) {
      cpu::CpuJit warm({dir.string(), ""});
      request_llama(warm);
      warm.compile();
    }
    state.ResumeTiming();
    cpu::CpuJit j({dir.string(), ""});
    request_llama(j);
    j.compile();
    last = j.stats();
  }
  fs::remove_all(dir);
  state.counters["kernels"] = last.kernels;
  state.counters["cache_hits"] = last.cache_hits;
  state.counters["emit_ms"] = last.emit_ms;
  state.counters["O3_ms"] = last.optimize_ms;
  state.counters["codegen_ms"] = last.codegen_ms;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<DType> formats = {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K};
  // The shapes (N x K: 4096x4096, a llama-3-8B FFN's 14336x4096 and 4096x14336), each as GEMV and GEMM.
  std::vector<Shape> shapes;
  for (int64_t M : {1, 128})
    for (auto [N, K] : {std::pair<int64_t, int64_t>{4096, 4096}, {14336, 4096}, {4096, 14336}}) shapes.push_back({M, N, K});
  // Every kernel is compiled up front, in one module.
  for (DType w : formats)
    for (bool gemm : {false, true}) jit().request_qmatmul(kernel_of(config_for(w, gemm)));
  for (DType a : {DType::Q8_0, DType::Q8_K, DType::F16}) jit().request_quantize(a);
  auto t0 = std::chrono::steady_clock::now();
  jit().compile();
  const auto st = jit().stats();
  fmt::print("JIT: {} kernels for {} ({}) in {:.0f} ms (emit {:.0f}, O3 {:.0f}, codegen {:.0f})\n", st.kernels,
             jit().target().name, jit().target().vector_bits(),
             std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(), st.emit_ms,
             st.optimize_ms, st.codegen_ms);
  for (int threads : {1, 2})
    for (bool int8 : {true, false})
      benchmark::RegisterBenchmark(fmt::format("peak/{}/t{}", int8 ? "int8_dot" : "f32_fma", threads).c_str(),
                                   [int8, threads](benchmark::State& st) { bm_peak(st, int8, threads); })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.5);
  for (int threads : {1, 2})
    benchmark::RegisterBenchmark(fmt::format("dram_read/t{}", threads).c_str(),
                                 [threads](benchmark::State& st) { bm_dram_read(st, threads); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond)
        ->MinTime(1.0);
  for (const Shape& s : shapes)
    for (int threads : {1, 2})
      for (DType w : formats) {
        const Config c = config_for(w, s.M > 1);
        benchmark::RegisterBenchmark(fmt::format("{}/{}x{}x{}/t{}", dtype_name(w), s.M, s.N, s.K, threads).c_str(),
                                     [c, s, threads](benchmark::State& st) { bm_matmul(st, c, s, threads); })
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond)
            ->MinTime(0.3);
      }
  for (DType act : {DType::Q8_0, DType::Q8_K})
    for (int64_t M : {1, 128})
      benchmark::RegisterBenchmark(fmt::format("quantize_{}/{}x4096", dtype_name(act), M).c_str(),
                                   [act, M](benchmark::State& st) { bm_quantize(st, act, M, 4096); })
          ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("compile/llama_q4_k_m/cold", [](benchmark::State& s) { bm_compile(s, false); })
      ->Unit(benchmark::kMillisecond)
      ->Iterations(3);
  benchmark::RegisterBenchmark("compile/llama_q4_k_m/cached", [](benchmark::State& s) { bm_compile(s, true); })
      ->Unit(benchmark::kMillisecond)
      ->Iterations(5);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
