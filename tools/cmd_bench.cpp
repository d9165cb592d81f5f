// nibble bench: prompt-processing and generation speed in the spirit of llama-bench, so the numbers
// sit beside llama.cpp's: random tokens, a warm-up run, then repetitions (mean and spread).
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/error.h"
#include "tools/commands.h"
#include "tools/run_options.h"

namespace nibble::tools {

namespace {

struct BenchOptions {
  RunOptions run;
  int n_prompt = 128;
  int n_gen = 32;
  int reps = 3;
  bool json = false;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Stat {
  double mean = 0, sd = 0;
};
Stat stat_of(const std::vector<double>& v) {
  Stat s;
  if (v.empty()) return s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / double(v.size() - 1)) : 0.0;
  return s;
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}


void run_bench(BenchOptions o) {
  if (o.n_prompt < 0 || o.n_gen < 0 || o.reps < 1) fail("bench: -p, -n must be >= 0 and -r >= 1");
  if (o.run.n_ctx < o.n_prompt + o.n_gen + 1) o.run.n_ctx = o.n_prompt + o.n_gen + 1;
  auto t0 = Clock::now();
  RunnableModel rm = open_model(o.run, false);
  double load_s = seconds_since(t0);
  Executor& ex = *rm.exec;
  const int64_t bytes = int64_t(rm.weight_bytes);
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(3, int32_t(ex.n_vocab() - 1));

  auto prompt_run = [&]() {
    std::vector<int32_t> ids(size_t(o.n_prompt)), pos(size_t(o.n_prompt));
    for (int i = 0; i < o.n_prompt; ++i) {
      ids[i] = tok(rng);
      pos[i] = i;
    }
    ex.reset();
    auto t = Clock::now();
    ex.forward(ids, pos);
    return seconds_since(t);
  };
  // Generation as llama-bench measures it: n tokens one at a time from an empty cache.
  auto gen_run = [&]() {
    ex.reset();
    std::vector<int32_t> id(1), pos(1);
    auto t = Clock::now();
    for (int i = 0; i < o.n_gen; ++i) {
      id[0] = tok(rng);
      pos[0] = i;
      ex.forward(id, pos);
    }
    return seconds_since(t);
  };
  std::vector<double> pp, tg;
  if (o.n_prompt > 0) {
    prompt_run();  // warm-up
    for (int r = 0; r < o.reps; ++r) pp.push_back(o.n_prompt / prompt_run());
  }
  if (o.n_gen > 0) {
    gen_run();
    for (int r = 0; r < o.reps; ++r) tg.push_back(o.n_gen / gen_run());
  }
  Stat p = stat_of(pp), g = stat_of(tg);
  double gbps = g.mean * double(bytes) / 1e9;
  const int threads = ex.threads() > 0       ? ex.threads()
                      : o.run.threads > 0 ? o.run.threads
                                          : int(std::max(1u, std::thread::hardware_concurrency()));
  if (o.json) {
    nlohmann::json j = {{"model", o.run.model}, {"target", ex.target()}, {"threads", threads},
                        {"weights_bytes", bytes}, {"load_s", load_s}, {"n_prompt", o.n_prompt},
                        {"pp_tps", p.mean}, {"pp_tps_sd", p.sd}, {"n_gen", o.n_gen}, {"tg_tps", g.mean},
                        {"tg_tps_sd", g.sd}, {"tg_weight_gbps", gbps}, {"peak_rss_mib", peak_rss_mib()},
                        {"reps", o.reps}, {"executor", ex.describe()}};
    fmt::print("{}\n", j.dump());
    return;
  }
  fmt::print("| model | target | threads | weights | load | test | t/s | weight GB/s |\n");
  fmt::print("|---|---|---|---|---|---|---|---|\n");
  std::string name = o.run.model.substr(o.run.model.find_last_of('/') + 1);
  if (o.n_prompt > 0)
    fmt::print("| {} | {} | {} | {:.1f} MiB | {:.2f} s | pp{} | {:.2f} ± {:.2f} | |\n", name, ex.target(), threads,
               bytes / 1048576.0, load_s, o.n_prompt, p.mean, p.sd);
  if (o.n_gen > 0)
    fmt::print("| {} | {} | {} | {:.1f} MiB | {:.2f} s | tg{} | {:.2f} ± {:.2f} | {:.2f} |\n", name, ex.target(),
               threads, bytes / 1048576.0, load_s, o.n_gen, g.mean, g.sd, gbps);
  fmt::print("peak memory (RSS): {:.1f} MiB; {}\n", peak_rss_mib(), ex.describe());
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* c = app.add_subcommand("bench", "Prompt-processing and generation speed, as llama-bench reports them");
  add_run_options(c, o->run);
  c->add_option("-p,--n-prompt", o->n_prompt, "prompt tokens (0: skip)")->capture_default_str();
  c->add_option("-n,--n-gen", o->n_gen, "generated tokens (0: skip)")->capture_default_str();
  c->add_option("-r,--reps", o->reps, "repetitions after a warm-up")->capture_default_str();
  c->add_flag("--json", o->json, "one JSON object");
  c->callback([o] { run_bench(*o); });
}

}  // namespace nibble::tools
