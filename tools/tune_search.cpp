#include "tools/tune_search.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <thread>

#include <fmt/format.h>

#include "ir/interp/interpreter.h"
#include "support/error.h"
#include "tools/tune_module.h"

namespace nibble::tools {

namespace {

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

// A candidate: its module (pipelined with the schedule) and executor, and its samples.
struct Candidate {
  KernelSchedule s;
  bool is_default = false;
  std::unique_ptr<Module> m;
  std::unique_ptr<Executor> e;
  std::vector<double> dec_us, pre_us;
  double dec() const { return median_of(dec_us); }
  double pre() const { return median_of(pre_us); }
};

// The one-kernel module of a signature and what runs it.
class Bench {
 public:
  Bench(const TuneTarget& target, const TuneKernel& k, int prefill)
      : target_(target), k_(k), P_(prefill), module_(k.weight, k.N, k.K, std::max(prefill, kCheckTokens)) {}

  // Compiles a candidate; "" or why it cannot be used.
  std::string make(Candidate& c) const {
    c.m = module_.build();
    ExecutorOptions eo = target_.executor_options();
    eo.max_tokens = std::max(P_, kCheckTokens);
    if (!c.is_default) {
      auto t = std::make_shared<TuningTable>();
      t->by_signature[k_.sig] = c.s;
      eo.tuning = t;
    }
    c.e = make_executor(*c.m, eo);
    for (const auto& op : c.m->functions[0]->ops) {
      if (op->op_name() != "qmatmul") continue;
      const std::string sig = target_.signature(*c.m, *op);
      if (sig != k_.sig) return fmt::format("the tuning module's kernel is '{}'", sig);
      if (!c.is_default && !op->attrs.bool_or("tuned", false)) return "select-tiles did not take the schedule";
    }
    return "";
  }

  // The reference executor's outputs are taken on the default candidate's compiled module (every
  // candidate quantizes as it does: schedules change no op) or on the module as built, as each
  // candidate's calls need them (tune_target.h, quantized_activations).
  // `compiled` must outlive the checks.
  void set_compiled(const Module& compiled) { compiled_ = &compiled; }

  // "" when the candidate's outputs match the reference, else how far off.
  std::string check(Candidate& c) {
    const double bound = is_quantized(k_.weight) ? 1e-6 : 1e-8;
    std::string out;
    for (int n : {1, kCheckTokens}) {
      const bool same_q = target_.quantized_activations(k_, c.s, n);
      const double e = nmse(c.e->forward(module_.tokens(size_t(n)), module_.positions(size_t(n))), reference(same_q, n));
      if (e > bound)
        out += fmt::format("{}NMSE {:.2e} > {:.0e} on {} token(s) (against the {})", out.empty() ? "" : ", ", e, bound, n,
                           same_q ? "compiled module" : "module as built");
    }
    return out;
  }

  // Microseconds per call: a pause, one untimed call, then `reps` timed.
  double time(Candidate& c, bool prefill, int reps) const {
    const size_t n = prefill ? size_t(P_) : 1;
    auto t = module_.tokens(n);
    auto p = module_.positions(n);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    c.e->forward(t, p);
    auto t0 = TuneClock::now();
    for (int r = 0; r < reps; ++r) c.e->forward(t, p);
    return seconds_since(t0) * 1e6 / reps;
  }

 private:
  // The reference's n-token output on the compiled module or on the module as built, computed once.
  const std::vector<float>& reference(bool compiled, int n) {
    std::vector<float>& want = refs_[{compiled, n}];
    if (!want.empty()) return want;
    if (!compiled && !built_) built_ = module_.build();
    if (compiled && !compiled_) fail("tune: internal error: no compiled module for the reference");
    Interpreter in(compiled ? *compiled_ : *built_);
    auto t = module_.tokens(size_t(n));
    auto p = module_.positions(size_t(n));
    want = in.forward({t.begin(), t.end()}, {p.begin(), p.end()});
    return want;
  }

  static constexpr int kCheckTokens = 9;
  const TuneTarget& target_;
  const TuneKernel& k_;
  int P_;
  TuneModule module_;
  const Module* compiled_ = nullptr;  // the default candidate's
  std::unique_ptr<Module> built_;
  std::map<std::pair<bool, int>, std::vector<float>> refs_;
};

// Interleaved rounds over the candidates until `until` (at least min_rounds, at most 25).
void measure(const Bench& b, std::vector<Candidate*>& cands, bool prefill, TuneClock::time_point until, int min_rounds) {
  if (cands.empty()) return;
  // Calls per sample: about 1 ms of the first candidate's calls.
  const double probe = b.time(*cands[0], prefill, 1);
  const int reps = std::clamp(int(1000.0 / std::max(probe, 1e-3)), 1, 200);
  for (int round = 0; round < 25; ++round) {
    if (round >= min_rounds && TuneClock::now() >= until) break;
    for (size_t i = 0; i < cands.size(); ++i) {
      Candidate& c = *cands[(i + size_t(round)) % cands.size()];
      (prefill ? c.pre_us : c.dec_us).push_back(b.time(c, prefill, reps));
    }
  }
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

double seconds_since(TuneClock::time_point t) { return std::chrono::duration<double>(TuneClock::now() - t).count(); }

double median_of(std::vector<double> v) {
  if (v.empty()) return INFINITY;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

TuneProgress::TuneProgress(bool quiet) : quiet_(quiet), tty_(isatty(2) != 0) {}

void TuneProgress::update(int index, int total, const std::string& label, int done, int cands, double left_s) {
  if (quiet_ || !tty_) return;
  constexpr int kWidth = 24;
  const double frac = (index + (cands > 0 ? double(done) / cands : 0.0)) / std::max(1, total);
  const int fill = std::clamp(int(frac * kWidth), 0, kWidth);
  fmt::print(stderr, "\r\033[K[{}{}] {}/{} {} ({}/{} candidates) {:.1f} s left", std::string(size_t(fill), '#'),
             std::string(size_t(kWidth - fill), '.'), index + 1, total, label, done, cands, std::max(0.0, left_s));
  std::fflush(stderr);
}

void TuneProgress::line(const std::string& s) {
  if (quiet_) return;
  if (tty_) fmt::print(stderr, "\r\033[K");
  fmt::print(stderr, "{}\n", s);
}

TuneOutcome tune_kernel(const TuneTarget& target, const TuneKernel& k, int prefill, double share_s,
                        TuneClock::time_point deadline, TuneProgress& prog, int index, int total) {
  TuneOutcome out;
  const auto start = TuneClock::now();
  auto at = [&](double frac) {
    auto t = start + std::chrono::duration_cast<TuneClock::duration>(std::chrono::duration<double>(share_s * frac));
    return std::min(t, deadline);
  };
  auto left = [&] { return std::chrono::duration<double>(deadline - TuneClock::now()).count(); };
  if (!k.dynamic_m) {
    out.why = "static M (only n_tokens-row products are tuned)";
    return out;
  }
  Bench b(target, k, prefill);
  std::vector<std::unique_ptr<Candidate>> all;
  int rejected = 0;

  auto add = [&](const KernelSchedule& s, bool is_default) -> Candidate* {
    auto c = std::make_unique<Candidate>();
    c->s = s;
    c->is_default = is_default;
    if (std::string why = b.make(*c); !why.empty()) fail("tune: {}: {}", k.sig, why);
    if (is_default) b.set_compiled(*c->m);
    if (std::string why = b.check(*c); !why.empty()) {
      ++rejected;
      prog.line(fmt::format("tune: {}: schedule {} rejected: {}", k.label, target.schedule_str(s), why));
      return nullptr;
    }
    all.push_back(std::move(c));
    return all.back().get();
  };

  // 1. decode: the heuristic first.
  Candidate* def = add(k.heuristic, true);
  if (!def) {
    out.why = "the heuristic schedule fails the reference check";
    return out;
  }
  const std::vector<KernelSchedule> plan1 = target.decode_candidates(k);
  const int n_cands = int(plan1.size() + target.prefill_candidates(k, k.heuristic).size()) + 1;
  std::vector<Candidate*> stage1{def};
  int built = 1;
  for (const KernelSchedule& s : plan1) {
    if (built >= 2 && TuneClock::now() >= at(0.45)) break;
    prog.update(index, total, k.label, built, n_cands, left());
    if (Candidate* c = add(s, false)) stage1.push_back(c);
    ++built;
  }
  prog.update(index, total, k.label, built, n_cands, left());
  measure(b, stage1, false, at(0.7), 3);
  Candidate* best1 = *std::min_element(stage1.begin(), stage1.end(),
                                       [](const Candidate* a, const Candidate* c) { return a->dec() < c->dec(); });

  // 2. prefill: the best decode schedule with each prefill variant, and the heuristic.
  std::vector<Candidate*> stage2{def};
  if (best1 != def) stage2.push_back(best1);
  for (const KernelSchedule& s : target.prefill_candidates(k, best1->s)) {
    if (s == best1->s || s == k.heuristic) continue;
    if (built >= 3 && TuneClock::now() >= at(0.85)) break;
    prog.update(index, total, k.label, built, n_cands, left());
    if (Candidate* c = add(s, false)) {
      c->dec_us = best1->dec_us;  // the decode kernel does not use the prefill parameters
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
  e.measured = utc_now();
  out.ok = true;
  return out;
}

}  // namespace nibble::tools
