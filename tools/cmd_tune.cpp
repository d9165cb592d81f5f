// nibble tune: per-device autotuning of the CPU qmatmul schedules (docs/tuning.md).
//
// The model goes through the target's pipeline; its qmatmuls fall into distinct kernel signatures
// (passes/tuning.h: format, activation type, N, K, layout, path, threads). Each signature missing
// from the database for this device is tuned on a one-kernel module of its shape (an f32 embedding
// feeding the weight product, random weights quantized by the reference quantizers), compiled and
// run through make_executor exactly as a model is:
//   1. decode: candidates rows_per_task (multiples of 16: 16, 32, 64, ... up to N, and the
//      heuristic's) x k_unroll (1, 2, 4), timed on 1-token calls;
//   2. prefill: the best of 1 with m_tile 1, 2, 4, 8 (the gemm variant), timed on prefill_tokens-token
//      calls, beside the heuristic schedule.
// Each candidate is first checked against the reference executor (ir/interp) on the module it was
// compiled from (same activation quantization): NMSE <= 1e-6 (1e-8 for float weights) on a decode
// call and a 9-token call (the gemm path and a tail), else it is rejected. Timing: a warm-up, then
// rounds in which every candidate in turn runs a batch of calls (a rotating order, a 1 ms pause
// first so the previous executor's workers have gone to sleep); the median batch per candidate.
// The workload time of a schedule is prefill(P) + P x decode: a P-token prompt, then P tokens
// generated. The best wins only when at least 2% faster than the heuristic; else the entry records
// the heuristic (speed-up 1.00), so a database never makes a kernel slower than the default.
// The budget is split evenly over the signatures still to tune; each entry is saved as soon as it is
// measured, so an interrupted or out-of-budget run keeps what it measured, and a re-run tunes only
// what is missing.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ir/builder.h"
#include "ir/dtype.h"
#include "ir/interp/interpreter.h"
#include "passes/tuning.h"
#include "support/error.h"
#include "tools/commands.h"
#include "tools/executor.h"
#include "tools/load_module.h"
#include "tools/tuning_db.h"

namespace nibble::tools {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct TuneOptions {
  std::string model, target = "cpu", db;
  double budget = 60;
  int threads = 0;
  int prefill_tokens = 64;
  bool json = false, force = false, quiet = false, bench = false;
};

// One distinct kernel signature of the model.
struct Kernel {
  std::string sig, label;
  DType weight = DType::F32;
  int64_t N = 0, K = 0;
  bool dynamic_m = true;
  TunedSchedule heuristic;
  int ops = 0;
};

std::string sched_str(const TunedSchedule& s) { return fmt::format("{}/{}/{}", s.rows_per_task, s.k_unroll, s.m_tile); }

std::vector<Kernel> kernels_of(const Module& m, int threads) {
  std::vector<Kernel> out;
  for (const auto& f : m.functions)
    for (const auto& op : f->ops) {
      if (op->op_name() != "qmatmul") continue;
      const std::string sig = tuning_signature(m, *op, threads);
      auto it = std::find_if(out.begin(), out.end(), [&](const Kernel& k) { return k.sig == sig; });
      if (it != out.end()) {
        ++it->ops;
        continue;
      }
      Kernel k;
      k.sig = sig;
      const TensorType& w = op->operand(1)->type;
      k.weight = w.dtype;
      k.N = w.dims[0].value;
      k.K = w.dims[1].value;
      k.dynamic_m = sig.find("path=gemv+gemm") != std::string::npos;
      k.heuristic = {op->attrs.int_or("rows_per_task", 16), op->attrs.int_or("k_unroll", 1), op->attrs.int_or("m_tile", 4)};
      k.ops = 1;
      const size_t lay = sig.find("layout=");
      k.label = fmt::format("{} {}x{} {}", dtype_name(k.weight), k.N, k.K,
                            lay == std::string::npos ? "" : sig.substr(lay + 7, sig.find(' ', lay) - lay - 7));
      out.push_back(k);
    }
  return out;
}

// Progress on stderr: a redrawn bar on a terminal, else one line per kernel.
class Progress {
 public:
  explicit Progress(bool quiet) : quiet_(quiet), tty_(isatty(2) != 0) {}
  void update(int index, int total, const std::string& label, int done, int cands, double left_s) {
    if (quiet_ || !tty_) return;
    constexpr int kWidth = 24;
    const double frac = (index + (cands > 0 ? double(done) / cands : 0.0)) / std::max(1, total);
    const int fill = std::clamp(int(frac * kWidth), 0, kWidth);
    fmt::print(stderr, "\r\033[K[{}{}] {}/{} {} ({}/{} candidates) {:.1f} s left", std::string(size_t(fill), '#'),
               std::string(size_t(kWidth - fill), '.'), index + 1, total, label, done, cands, std::max(0.0, left_s));
    std::fflush(stderr);
  }
  void line(const std::string& s) {
    if (quiet_) return;
    if (tty_) fmt::print(stderr, "\r\033[K");
    fmt::print(stderr, "{}\n", s);
  }

 private:
  bool quiet_, tty_;
};

double nmse(std::span<const float> got, const std::vector<float>& want) {
  if (got.size() != want.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    const double d = double(got[i]) - double(want[i]);
    num += d * d;
    den += double(want[i]) * double(want[i]);
  }
  return num / std::max(den, 1e-30);
}

double median(std::vector<double> v) {
  if (v.empty()) return INFINITY;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A candidate: its module (pipelined with the schedule) and executor, and its samples.
struct Candidate {
  TunedSchedule s;
  bool is_default = false;
  std::unique_ptr<Module> m;
  std::unique_ptr<Executor> e;
  std::vector<double> dec_us, pre_us;
  double dec() const { return median(dec_us); }
  double pre() const { return median(pre_us); }
};

// The one-kernel module of a signature and what runs it.
class Bench {
 public:
  Bench(const Kernel& k, int threads, int prefill) : k_(k), threads_(threads), P_(prefill) {
    std::mt19937 rng(20250101);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    V_ = std::min<int64_t>(k.N, 64);
    table_ = std::make_shared<std::vector<uint8_t>>(size_t(V_ * k.K * 4));
    float* t = reinterpret_cast<float*>(table_->data());
    for (int64_t i = 0; i < V_ * k.K; ++i) t[i] = dist(rng);
    // Up to 256 distinct rows, repeated: big weights are made in milliseconds, timing is the same.
    const int64_t rb = row_bytes(k.weight, k.K), distinct = std::min<int64_t>(k.N, 256);
    weight_ = std::make_shared<std::vector<uint8_t>>(size_t(k.N * rb));
    std::vector<float> row(size_t(k.K));
    for (int64_t r = 0; r < distinct; ++r) {
      for (float& x : row) x = dist(rng) * 0.05f;
      dtype_info(k.weight).quantize_row(row.data(), weight_->data() + r * rb, k.K);
    }
    for (int64_t r = distinct; r < k.N; ++r)
      std::copy_n(weight_->data() + (r % distinct) * rb, rb, weight_->data() + r * rb);
    for (int i = 0; i < std::max(P_, kCheckTokens); ++i) {
      toks_.push_back(int32_t((i * 7 + 3) % V_));
      pos_.push_back(i);
    }
  }

  std::unique_ptr<Module> build() const {
    auto m = std::make_unique<Module>();
    m->name = "tune";
    Function* f = m->add_function("forward");
    Builder b(*m, *f);
    Dim n = Dim::sym("n_tokens");
    Value* tokens = f->add_arg("tokens", {DType::I32, {n}});
    f->add_arg("pos", {DType::I32, {n}});
    m->attrs.set("n_ctx", int64_t(std::max(P_, kCheckTokens) + 1));
    WeightDecl& td = b.declare_weight("table", {DType::F32, {Dim(V_), Dim(k_.K)}});
    td.data = table_->data();
    WeightDecl& wd = b.declare_weight("w", {k_.weight, {Dim(k_.N), Dim(k_.K)}});
    wd.data = weight_->data();
    m->keep_alive.push_back(table_);
    m->keep_alive.push_back(weight_);
    Value* x = b.create("embedding", {b.weight("table"), tokens});
    Value* w = b.weight("w");
    if (k_.weight != DType::F32) w = b.dequant(w);
    Attrs a;
    a.set("transpose_b", true);
    Value* y = b.create("matmul", {x, w}, std::move(a));
    f->results.push_back(y);
    m->attrs.set("n_vocab", k_.N);
    return m;
  }

  // Compiles a candidate; "" or why it cannot be used.
  std::string make(Candidate& c) const {
    c.m = build();
    ExecutorOptions eo;
    eo.target = "cpu";
    eo.threads = threads_;
    eo.max_tokens = std::max(P_, kCheckTokens);
    if (!c.is_default) {
      auto t = std::make_shared<TuningTable>();
      t->by_signature[k_.sig] = c.s;
      eo.tuning = t;
    }
    c.e = make_executor(*c.m, eo);
    for (const auto& op : c.m->functions[0]->ops) {
      if (op->op_name() != "qmatmul") continue;
      const std::string sig = tuning_signature(*c.m, *op, threads_);
      if (sig != k_.sig) return fmt::format("the tuning module's kernel is '{}'", sig);
      if (!c.is_default && !op->attrs.bool_or("tuned", false)) return "select-tiles did not take the schedule";
    }
    return "";
  }

  // The reference outputs, from the reference executor on a compiled module (same quantize ops).
  void reference(const Module& compiled) {
    Interpreter in(compiled);
    ref_dec_ = in.forward({toks_[0]}, {0});
    ref_chk_ = in.forward({toks_.begin(), toks_.begin() + kCheckTokens}, {pos_.begin(), pos_.begin() + kCheckTokens});
  }

  // "" when the candidate's outputs match the reference, else how far off.
  std::string check(Candidate& c) const {
    const double bound = is_quantized(k_.weight) ? 1e-6 : 1e-8;
    const double e1 = nmse(c.e->forward(std::span(toks_).first(1), std::span(pos_).first(1)), ref_dec_);
    const double e2 = nmse(c.e->forward(std::span(toks_).first(kCheckTokens), std::span(pos_).first(kCheckTokens)),
                           ref_chk_);
    if (e1 <= bound && e2 <= bound) return "";
    return fmt::format("NMSE {:.2e} (decode), {:.2e} ({} tokens) > {:.0e}", e1, e2, kCheckTokens, bound);
  }

  // Microseconds per call: a pause, one untimed call, then `reps` timed.
  double time(Candidate& c, bool prefill, int reps) const {
    const size_t n = prefill ? size_t(P_) : 1;
    auto t = std::span(toks_).first(n);
    auto p = std::span(pos_).first(n);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    c.e->forward(t, p);
    auto t0 = Clock::now();
    for (int r = 0; r < reps; ++r) c.e->forward(t, p);
    return seconds_since(t0) * 1e6 / reps;
  }

  int prefill() const { return P_; }

 private:
  static constexpr int kCheckTokens = 9;
  const Kernel& k_;
  int threads_, P_;
  int64_t V_ = 0;
  std::shared_ptr<std::vector<uint8_t>> table_, weight_;
  std::vector<int32_t> toks_, pos_;
  std::vector<float> ref_dec_, ref_chk_;
};

// Interleaved rounds over the candidates until `until` (at least min_rounds, at most 25).
void measure(const Bench& b, std::vector<Candidate*>& cands, bool prefill, Clock::time_point until, int min_rounds) {
  if (cands.empty()) return;
  // Calls per sample: about 1 ms of the first candidate's calls.
  const double probe = b.time(*cands[0], prefill, 1);
  const int reps = std::clamp(int(1000.0 / std::max(probe, 1e-3)), 1, 200);
  for (int round = 0; round < 25; ++round) {
    if (round >= min_rounds && Clock::now() >= until) break;
    for (size_t i = 0; i < cands.size(); ++i) {
      Candidate& c = *cands[(i + size_t(round)) % cands.size()];
      (prefill ? c.pre_us : c.dec_us).push_back(b.time(c, prefill, reps));
    }
  }
}

// rows_per_task candidates: 16 x powers of two up to N (rounded up to 16), the heuristic's, N.
std::vector<int64_t> rows_candidates(const Kernel& k) {
  const int64_t top = (k.N + 15) / 16 * 16;
  std::vector<int64_t> r;
  for (int64_t v = 16; v < top; v *= 2) r.push_back(v);
  r.push_back(top);
  r.push_back(std::min(k.heuristic.rows_per_task, top));
  std::sort(r.begin(), r.end());
  r.erase(std::unique(r.begin(), r.end()), r.end());
  // Nearest to the heuristic first (built first when the budget is short).
  const double h = std::log2(double(std::max<int64_t>(16, k.heuristic.rows_per_task)));
  std::stable_sort(r.begin(), r.end(), [&](int64_t a, int64_t b) {
    return std::fabs(std::log2(double(a)) - h) < std::fabs(std::log2(double(b)) - h);
  });
  return r;
}

struct Outcome {
  bool ok = false;
  std::string why;  // when not ok
  TuningEntry entry;
};

Outcome tune_kernel(const Kernel& k, int threads, int prefill, double share_s, Clock::time_point deadline,
                    Progress& prog, int index, int total) {
  Outcome out;
  const auto start = Clock::now();
  auto at = [&](double frac) {
    auto t = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(share_s * frac));
    return std::min(t, deadline);
  };
  auto left = [&] { return std::chrono::duration<double>(deadline - Clock::now()).count(); };
  if (!k.dynamic_m) {
    out.why = "static M (only n_tokens-row products are tuned)";
    return out;
  }
  Bench b(k, threads, prefill);
  std::vector<std::unique_ptr<Candidate>> all;
  int rejected = 0;

  auto add = [&](const TunedSchedule& s, bool is_default) -> Candidate* {
    auto c = std::make_unique<Candidate>();
    c->s = s;
    c->is_default = is_default;
    if (std::string why = b.make(*c); !why.empty()) fail("tune: {}: {}", k.sig, why);
    if (is_default) b.reference(*c->m);
    if (std::string why = b.check(*c); !why.empty()) {
      ++rejected;
      prog.line(fmt::format("tune: {}: schedule {} rejected: {}", k.label, sched_str(s), why));
      return nullptr;
    }
    all.push_back(std::move(c));
    return all.back().get();
  };

  // 1. decode: rows_per_task x k_unroll, the heuristic first.
  Candidate* def = add(k.heuristic, true);
  if (!def) {
    out.why = "the heuristic schedule fails the reference check";
    return out;
  }
  std::vector<TunedSchedule> plan1;
  for (int64_t r : rows_candidates(k))
    for (int64_t u : {int64_t(1), int64_t(2), int64_t(4)}) {
      TunedSchedule s{r, u, k.heuristic.m_tile};
      if (!(s == k.heuristic)) plan1.push_back(s);
    }
  const int n_cands = int(plan1.size()) + 4;
  std::vector<Candidate*> stage1{def};
  int built = 1;
  for (const TunedSchedule& s : plan1) {
    if (built >= 2 && Clock::now() >= at(0.45)) break;
    prog.update(index, total, k.label, built, n_cands, left());
    if (Candidate* c = add(s, false)) stage1.push_back(c);
    ++built;
  }
  prog.update(index, total, k.label, built, n_cands, left());
  measure(b, stage1, false, at(0.7), 3);
  Candidate* best1 = *std::min_element(stage1.begin(), stage1.end(),
                                       [](const Candidate* a, const Candidate* c) { return a->dec() < c->dec(); });

  // 2. prefill: the best decode schedule with each m_tile, and the heuristic.
  std::vector<Candidate*> stage2{def};
  if (best1 != def) stage2.push_back(best1);
  for (int64_t mt : {int64_t(1), int64_t(2), int64_t(4), int64_t(8)}) {
    TunedSchedule s{best1->s.rows_per_task, best1->s.k_unroll, mt};
    if (s == best1->s || s == k.heuristic) continue;
    if (built >= 3 && Clock::now() >= at(0.85)) break;
    prog.update(index, total, k.label, built, n_cands, left());
    if (Candidate* c = add(s, false)) {
      c->dec_us = best1->dec_us;  // the gemv kernel does not use m_tile
      stage2.push_back(c);
    }
    ++built;
  }
  prog.update(index, total, k.label, built, n_cands, left());
  measure(b, stage2, true, at(1.0), 2);

  const double P = prefill;
  auto score = [&](const Candidate* c) { return c->pre() + P * c->dec(); };
  Candidate* best = *std::min_element(stage2.begin(), stage2.end(),
                                      [&](const Candidate* a, const Candidate* c) { return score(a) < score(c); });
  if (score(best) > 0.98 * score(def)) best = def;

  TuningEntry& e = out.entry;
  e.best = best->s;
  e.heuristic = k.heuristic;
  e.best_us = score(best);
  e.default_us = score(def);
  e.best_decode_us = best->dec();
  e.best_prefill_us = best->pre();
  e.default_decode_us = def->dec();
  e.default_prefill_us = def->pre();
  e.prefill_tokens = prefill;
  e.candidates = int(all.size());
  e.rejected = rejected;
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  e.measured = buf;
  out.ok = true;
  return out;
}

void print_table(const std::vector<Kernel>& ks, const TuningDb& db, const std::string& fp) {
  fmt::print("{:<28} {:>4}  {:<12} {:>10} {:>10}  {:<12} {:>10} {:>10}  {:>8}\n", "kernel", "ops", "default",
             "decode us", "prefill us", "best", "decode us", "prefill us", "speed-up");
  for (const Kernel& k : ks) {
    const TuningEntry* e = db.find(fp, k.sig);
    if (!e) {
      fmt::print("{:<28} {:>4}  {:<12} {:>10} {:>10}  {:<12} {:>10} {:>10}  {:>8}\n", k.label, k.ops,
                 sched_str(k.heuristic), "-", "-", "(not tuned)", "-", "-", "-");
      continue;
    }
    fmt::print("{:<28} {:>4}  {:<12} {:>10.1f} {:>10.1f}  {:<12} {:>10.1f} {:>10.1f}  {:>7.2f}x\n", k.label, k.ops,
               sched_str(e->heuristic), e->default_decode_us, e->default_prefill_us, sched_str(e->best),
               e->best_decode_us, e->best_prefill_us, e->speedup());
  }
  fmt::print("schedules: rows_per_task/k_unroll/m_tile; speed-up of prefill(P) + P x decode\n");
}

// --bench: the whole model compiled with the database's schedules and with the heuristic's, timed
// interleaved (reset, a prefill_tokens-token prompt, 32 decode steps; 5 repetitions, medians).
void bench_model(const TuneOptions& o, int threads, std::shared_ptr<const TuningTable> table) {
  struct Side {
    const char* name;
    LoadedModel lm;
    std::unique_ptr<Executor> e;
    std::vector<double> pre_ms, dec_ms;
  };
  constexpr int kDecode = 32, kReps = 5;
  const int P = o.prefill_tokens;
  Side sides[2] = {{"heuristic", {}, nullptr, {}, {}}, {"tuned", {}, nullptr, {}, {}}};
  for (int i = 0; i < 2; ++i) {
    sides[i].lm = load_model(o.model, LoadOptions{int64_t(P + kDecode + 1), "f16"});
    ExecutorOptions eo;
    eo.target = "cpu";
    eo.threads = threads;
    if (i == 1) eo.tuning = table;
    sides[i].e = make_executor(*sides[i].lm.module, eo);
  }
  std::mt19937 rng(1234);
  const int64_t vocab = sides[0].e->n_vocab();
  std::vector<int32_t> toks(size_t(P + kDecode)), pos(toks.size());
  for (size_t i = 0; i < toks.size(); ++i) {
    toks[i] = int32_t(rng() % uint32_t(vocab));
    pos[i] = int32_t(i);
  }
  for (int r = 0; r < kReps + 1; ++r)
    for (int k = 0; k < 2; ++k) {
      Side& s = sides[(k + r) % 2];
      s.e->reset();
      auto t0 = Clock::now();
      s.e->forward(std::span(toks).first(size_t(P)), std::span(pos).first(size_t(P)));
      const double pre = seconds_since(t0) * 1e3;
      t0 = Clock::now();
      for (int d = 0; d < kDecode; ++d) s.e->forward(std::span(toks).subspan(size_t(P + d), 1), std::span(pos).subspan(size_t(P + d), 1));
      const double dec = seconds_since(t0) * 1e3;
      if (r == 0) continue;  // warm-up
      s.pre_ms.push_back(pre);
      s.dec_ms.push_back(dec);
    }
  fmt::print("bench ({} threads, medians of {}): prompt {} tokens, then {} decode steps\n", threads, kReps, P, kDecode);
  for (Side& s : sides)
    fmt::print("  {:<10} prefill {:8.2f} ms ({:8.1f} tok/s)   decode {:8.2f} ms ({:8.1f} tok/s)\n", s.name,
               median(s.pre_ms), P / median(s.pre_ms) * 1e3, median(s.dec_ms), kDecode / median(s.dec_ms) * 1e3);
  fmt::print("  tuned / heuristic speed: prefill {:.2f}x, decode {:.2f}x\n", median(sides[0].pre_ms) / median(sides[1].pre_ms),
             median(sides[0].dec_ms) / median(sides[1].dec_ms));
}

void run_tune(const TuneOptions& o) {
  if (is_vulkan_target(o.target))
    fail("tune --target {}: Vulkan kernels take their tiles per device (GemvTiles/GemmTiles from vk::tiles_for), "
         "not per kernel, so there is nothing per-kernel to tune yet; tune --target cpu tunes the CPU kernels",
         o.target);
  if (o.target != "cpu") fail("tune --target {}: expected cpu (vulkan: not tuned yet)", o.target);
  if (o.budget <= 0) fail("tune: --budget must be > 0 seconds");
  if (o.prefill_tokens < 4 || o.prefill_tokens > 512) fail("tune: --prefill-tokens must be in [4, 512]");
  const std::string db_path = o.db.empty() ? default_tuning_db_path() : o.db;
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.budget));

  TuningDb db = TuningDb::load(db_path);
  const DeviceFingerprint fp = device_fingerprint(o.target);
  const int threads = host_pass_options("cpu", o.threads, 512).threads;

  LoadedModel lm = load_model(o.model, LoadOptions{});
  ExecutorOptions eo;
  eo.target = "cpu";
  eo.threads = threads;
  run_pipeline(*lm.module, "cpu", eo);
  const std::vector<Kernel> ks = kernels_of(*lm.module, threads);
  lm = {};

  std::vector<std::string> sigs;
  for (const Kernel& k : ks) sigs.push_back(k.sig);
  const std::vector<std::string> missing = o.force ? sigs : db.missing(fp.key, sigs);
  std::vector<const Kernel*> todo;
  for (const Kernel& k : ks)
    if (std::find(missing.begin(), missing.end(), k.sig) != missing.end()) todo.push_back(&k);
  Progress prog(o.quiet);
  prog.line(fmt::format("tune: {} kernel signatures ({} threads) on {}; {} already in {}, {} to tune, budget {:.0f} s",
                        ks.size(), threads, fp.key, ks.size() - todo.size(), db_path, todo.size(), o.budget));
  if (todo.empty()) {
    prog.line(fmt::format("tune: all {} kernel signatures already tuned for this device", ks.size()));
  } else {
    TuningDevice& dev = db.devices[fp.key];
    dev.target = fp.target;
    dev.about_json = fp.about_json;
  }
  int done = 0, skipped = 0;
  for (size_t i = 0; i < todo.size(); ++i) {
    const Kernel& k = *todo[i];
    const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    if (left <= 0) {
      prog.line(fmt::format("tune: budget spent; {} signatures left for a later run", todo.size() - i));
      break;
    }
    const double share = left / double(todo.size() - i);
    Outcome r = tune_kernel(k, threads, o.prefill_tokens, share, deadline, prog, int(i), int(todo.size()));
    if (!r.ok) {
      ++skipped;
      prog.line(fmt::format("tune: [{}/{}] {}: skipped: {}", i + 1, todo.size(), k.label, r.why));
      continue;
    }
    db.devices[fp.key].kernels[k.sig] = r.entry;
    db.save(db_path);
    ++done;
    const TuningEntry& e = r.entry;
    prog.line(fmt::format("tune: [{}/{}] {}: default {} {:.1f} us, best {} {:.1f} us ({:.2f}x; {} candidates{})", i + 1,
                          todo.size(), k.label, sched_str(e.heuristic), e.default_us, sched_str(e.best), e.best_us,
                          e.speedup(), e.candidates, e.rejected ? fmt::format(", {} rejected", e.rejected) : ""));
  }
  if (!todo.empty())
    prog.line(fmt::format("tune: {} tuned, {} skipped in {:.1f} s; database {}", done, skipped, seconds_since(t0),
                          db_path));

  if (o.bench) bench_model(o, threads, db.table_for(fp.key));
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Kernel& k : ks) {
      nlohmann::json j = {{"signature", k.sig}, {"kernel", k.label}, {"ops", k.ops}};
      if (const TuningEntry* e = db.find(fp.key, k.sig))
        j.update({{"default", sched_str(e->heuristic)}, {"default_us", e->default_us}, {"best", sched_str(e->best)},
                  {"best_us", e->best_us}, {"speedup", e->speedup()}});
      out.push_back(j);
    }
    fmt::print("{}\n", nlohmann::json{{"device", fp.key}, {"database", db_path}, {"kernels", out}}.dump(2));
  } else {
    print_table(ks, db, fp.key);
  }
}

}  // namespace

void add_tune_command(CLI::App& app) {
  auto o = std::make_shared<TuneOptions>();
  CLI::App* c = app.add_subcommand("tune", "Measure the best kernel schedules of a model on this device (tuning database)");
  c->add_option("model", o->model, "MODEL.gguf (or FILE.nir)")->required();
  c->add_option("--target", o->target, "cpu (vulkan: refused, its tiles are per device)")->capture_default_str();
  c->add_option("--budget", o->budget, "seconds to spend, split over the kernels still to tune")->capture_default_str();
  c->add_option("--tuning-db", o->db, "the database (default: $XDG_CACHE_HOME/nibble/tuning.json or ~/.cache/nibble/tuning.json)");
  c->add_option("--threads", o->threads, "the thread count to tune for (0: all cores; part of the signature)");
  c->add_option("--prefill-tokens", o->prefill_tokens, "tokens of the prefill calls timed (the gemm path)")->capture_default_str();
  c->add_flag("--force", o->force, "re-tune signatures the database already has");
  c->add_flag("--bench", o->bench, "then time the whole model with the database and without (prefill + 32 decode steps)");
  c->add_flag("--json", o->json, "print the results as JSON instead of a table");
  c->add_flag("-q,--quiet", o->quiet, "no progress on stderr");
  c->callback([o] { run_tune(*o); });
}

}  // namespace nibble::tools
