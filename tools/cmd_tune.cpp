// nibble tune: per-device autotuning of qmatmul schedules (docs/tuning.md).
//
// The model goes through the target's pipeline; its qmatmuls fall into distinct kernel signatures
// (passes/tuning.h). Each signature missing from the database for this device is measured on a
// one-kernel module of its shape (tools/tune_search.h: reference check, interleaved median timing,
// two stages) over the target's candidates (tools/tune_target.h: tune_cpu.cpp, tune_vulkan.cpp).
// The budget is split evenly over the signatures still to tune; each entry is saved as soon as it is
// measured, so an interrupted or out-of-budget run keeps what it measured, and a re-run tunes only
// what is missing.
#include <algorithm>
#include <chrono>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/error.h"
#include "tools/commands.h"
#include "tools/executor.h"
#include "tools/load_module.h"
#include "tools/tune_search.h"
#include "tools/tune_target.h"
#include "tools/tuning_db.h"

namespace nibble::tools {

namespace {

struct TuneOptions {
  std::string model, target = "cpu", db;
  double budget = 60;
  int threads = 0;
  int prefill_tokens = 64;
  bool json = false, force = false, quiet = false, bench = false;
};

void print_table(const TuneTarget& target, const std::vector<TuneKernel>& ks, const TuningDb& db, const std::string& fp) {
  size_t wk = 6, ws = 11;  // "kernel", "(not tuned)"
  for (const TuneKernel& k : ks) {
    wk = std::max(wk, k.label.size());
    ws = std::max(ws, target.schedule_str(k.heuristic).size());
    if (const TuningEntry* e = db.find(fp, k.sig)) ws = std::max(ws, target.schedule_str(e->best).size());
  }
  fmt::print("{:<{}} {:>4}  {:<{}} {:>10} {:>10}  {:<{}} {:>10} {:>10}  {:>8}\n", "kernel", wk, "ops", "default", ws,
             "decode us", "prefill us", "best", ws, "decode us", "prefill us", "speed-up");
  for (const TuneKernel& k : ks) {
    const TuningEntry* e = db.find(fp, k.sig);
    if (!e) {
      fmt::print("{:<{}} {:>4}  {:<{}} {:>10} {:>10}  {:<{}} {:>10} {:>10}  {:>8}\n", k.label, wk, k.ops,
                 target.schedule_str(k.heuristic), ws, "-", "-", "(not tuned)", ws, "-", "-", "-");
      continue;
    }
    fmt::print("{:<{}} {:>4}  {:<{}} {:>10.1f} {:>10.1f}  {:<{}} {:>10.1f} {:>10.1f}  {:>7.2f}x\n", k.label, wk, k.ops,
               target.schedule_str(e->heuristic), ws, e->default_decode_us, e->default_prefill_us,
               target.schedule_str(e->best), ws, e->best_decode_us, e->best_prefill_us, e->speedup());
  }
  fmt::print("{}; speed-up of prefill(P) + P x decode\n", target.legend());
}

// --bench: the whole model compiled with the database's schedules and with the heuristic's, timed
// interleaved (reset, a prefill_tokens-token prompt, 32 decode steps; 5 repetitions, medians).
void bench_model(const TuneOptions& o, const TuneTarget& target, std::shared_ptr<const TuningTable> table) {
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
    ExecutorOptions eo = target.executor_options();
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
      auto t0 = TuneClock::now();
      s.e->forward(std::span(toks).first(size_t(P)), std::span(pos).first(size_t(P)));
      const double pre = seconds_since(t0) * 1e3;
      t0 = TuneClock::now();
      for (int d = 0; d < kDecode; ++d) s.e->forward(std::span(toks).subspan(size_t(P + d), 1), std::span(pos).subspan(size_t(P + d), 1));
      const double dec = seconds_since(t0) * 1e3;
      if (r == 0) continue;  // warm-up
      s.pre_ms.push_back(pre);
      s.dec_ms.push_back(dec);
    }
  fmt::print("bench ({}, medians of {}): prompt {} tokens, then {} decode steps\n", target.about(), kReps, P, kDecode);
  for (Side& s : sides)
    fmt::print("  {:<10} prefill {:8.2f} ms ({:8.1f} tok/s)   decode {:8.2f} ms ({:8.1f} tok/s)\n", s.name,
               median_of(s.pre_ms), P / median_of(s.pre_ms) * 1e3, median_of(s.dec_ms), kDecode / median_of(s.dec_ms) * 1e3);
  fmt::print("  tuned / heuristic speed: prefill {:.2f}x, decode {:.2f}x\n", median_of(sides[0].pre_ms) / median_of(sides[1].pre_ms),
             median_of(sides[0].dec_ms) / median_of(sides[1].dec_ms));
}

void run_tune(const TuneOptions& o) {
  if (o.budget <= 0) fail("tune: --budget must be > 0 seconds");
  if (o.prefill_tokens < 4 || o.prefill_tokens > 512) fail("tune: --prefill-tokens must be in [4, 512]");
  const std::string db_path = o.db.empty() ? default_tuning_db_path() : o.db;
  const auto t0 = TuneClock::now();
  const auto deadline = t0 + std::chrono::duration_cast<TuneClock::duration>(std::chrono::duration<double>(o.budget));

  TuningDb db = TuningDb::load(db_path);
  const std::unique_ptr<TuneTarget> target = make_tune_target(o.target, o.threads);
  const DeviceFingerprint fp = device_fingerprint(target->target());

  LoadedModel lm = load_model(o.model, LoadOptions{});
  run_pipeline(*lm.module, target->pipeline(), target->executor_options());
  const std::vector<TuneKernel> ks = kernels_of(*lm.module, *target);
  lm = {};

  std::vector<std::string> sigs;
  for (const TuneKernel& k : ks) sigs.push_back(k.sig);
  const std::vector<std::string> missing = o.force ? sigs : db.missing(fp.key, sigs);
  std::vector<const TuneKernel*> todo;
  for (const TuneKernel& k : ks)
    if (std::find(missing.begin(), missing.end(), k.sig) != missing.end()) todo.push_back(&k);
  TuneProgress prog(o.quiet);
  prog.line(fmt::format("tune: {} kernel signatures ({}) on {}; {} already in {}, {} to tune, budget {:.0f} s",
                        ks.size(), target->about(), fp.key, ks.size() - todo.size(), db_path, todo.size(), o.budget));
  if (todo.empty()) {
    prog.line(fmt::format("tune: all {} kernel signatures already tuned for this device", ks.size()));
  } else {
    TuningDevice& dev = db.devices[fp.key];
    dev.target = fp.target;
    dev.about_json = fp.about_json;
  }
  int done = 0, skipped = 0;
  for (size_t i = 0; i < todo.size(); ++i) {
    const TuneKernel& k = *todo[i];
    const double left = std::chrono::duration<double>(deadline - TuneClock::now()).count();
    if (left <= 0) {
      prog.line(fmt::format("tune: budget spent; {} signatures left for a later run", todo.size() - i));
      break;
    }
    const double share = left / double(todo.size() - i);
    TuneOutcome r = tune_kernel(*target, k, o.prefill_tokens, share, deadline, prog, int(i), int(todo.size()));
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
                          todo.size(), k.label, target->schedule_str(e.heuristic), e.default_us,
                          target->schedule_str(e.best), e.best_us, e.speedup(), e.candidates,
                          e.rejected ? fmt::format(", {} rejected", e.rejected) : ""));
  }
  if (!todo.empty())
    prog.line(fmt::format("tune: {} tuned, {} skipped in {:.1f} s; database {}", done, skipped, seconds_since(t0),
                          db_path));

  if (o.bench) bench_model(o, *target, db.table_for(fp.key));
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const TuneKernel& k : ks) {
      nlohmann::json j = {{"signature", k.sig}, {"kernel", k.label}, {"ops", k.ops}};
      if (const TuningEntry* e = db.find(fp.key, k.sig))
        j.update({{"default", target->schedule_str(e->heuristic)}, {"default_us", e->default_us},
                  {"best", target->schedule_str(e->best)}, {"best_us", e->best_us}, {"speedup", e->speedup()}});
      out.push_back(j);
    }
    fmt::print("{}\n", nlohmann::json{{"device", fp.key}, {"database", db_path}, {"kernels", out}}.dump(2));
  } else {
    print_table(*target, ks, db, fp.key);
  }
}

}  // namespace

void add_tune_command(CLI::App& app) {
  auto o = std::make_shared<TuneOptions>();
  CLI::App* c = app.add_subcommand("tune", "Measure the best kernel schedules of a model on this device (tuning database)");
  c->add_option("model", o->model, "MODEL.gguf (or FILE.nir)")->required();
  c->add_option("--target", o->target, "cpu, vulkan or vulkan:N")->capture_default_str();
  c->add_option("--budget", o->budget, "seconds to spend, split over the kernels still to tune")->capture_default_str();
  c->add_option("--tuning-db", o->db, "the database (default: $XDG_CACHE_HOME/nibble/tuning.json or ~/.cache/nibble/tuning.json)");
  c->add_option("--threads", o->threads, "cpu: the thread count to tune for (0: all cores; part of the signature)");
  c->add_option("--prefill-tokens", o->prefill_tokens, "tokens of the prefill calls timed (the gemm path)")->capture_default_str();
  c->add_flag("--force", o->force, "re-tune signatures the database already has");
  c->add_flag("--bench", o->bench, "then time the whole model with the database and without (prefill + 32 decode steps)");
  c->add_flag("--json", o->json, "print the results as JSON instead of a table");
  c->add_flag("-q,--quiet", o->quiet, "no progress on stderr");
  c->callback([o] { run_tune(*o); });
}

}  // namespace nibble::tools
