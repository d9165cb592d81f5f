// nibble generate: stream text (or token ids) generated from a prompt.
#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "support/error.h"
#include "tools/commands.h"
#include "tools/run_options.h"
#include "tools/sampler.h"

namespace nibble::tools {

namespace {

struct GenerateOptions {
  RunOptions run;
  std::string prompt;
  int n_predict = 64;
  bool greedy = false;
  float temp = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  uint64_t seed = 0;
  bool tokens = false;
  bool ignore_eos = false;
  bool quiet = false;
};

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void run_generate(const GenerateOptions& o) {
  auto t_load = Clock::now();
  RunnableModel rm = open_model(o.run, true);
  double load_ms = ms_since(t_load);
  const Tokenizer& tok = *rm.model.tokenizer;
  Executor& ex = *rm.exec;

  std::vector<int32_t> ids = tok.encode(o.prompt, true, true);
  if (ids.empty()) fail("generate: the prompt gives no tokens");
  if (o.n_predict < 0) fail("generate: -n {} (expected >= 0)", o.n_predict);
  if (int64_t(ids.size()) + o.n_predict > ex.n_ctx())
    fail("generate: prompt ({} tokens) + {} new tokens exceed the context of {} (raise --ctx)", ids.size(), o.n_predict,
         ex.n_ctx());
  SamplerOptions so;
  so.greedy = o.greedy;
  so.temperature = o.temp;
  so.top_k = o.top_k;
  so.top_p = o.top_p;
  so.seed = o.seed;
  Sampler sampler(so);

  if (!o.tokens) {
    fmt::print("{}", o.prompt);
    std::fflush(stdout);
  }
  std::vector<int32_t> pos(ids.size());
  for (size_t i = 0; i < pos.size(); ++i) pos[i] = int32_t(i);
  auto t_prompt = Clock::now();
  std::span<const float> logits = ex.forward(ids, pos);
  double prompt_ms = ms_since(t_prompt);
  const int64_t V = ex.n_vocab();
  int32_t next = sampler.sample(logits.data() + (ids.size() - 1) * V, V);

  auto t_gen = Clock::now();
  int generated = 0;
  std::vector<int32_t> out_ids;
  std::vector<int32_t> one(1), one_pos(1);
  for (int i = 0; i < o.n_predict; ++i) {
    if (!o.ignore_eos && next == tok.vocab().eos) break;
    out_ids.push_back(next);
    ++generated;
    if (o.tokens) {
      fmt::print("{}{}", i ? " " : "", next);
    } else {
      fmt::print("{}", tok.token_to_piece(next));
    }
    std::fflush(stdout);
    if (i + 1 == o.n_predict) break;
    one[0] = next;
    one_pos[0] = int32_t(ids.size()) + i;
    logits = ex.forward(one, one_pos);
    next = sampler.sample(logits.data(), V);
  }
  fmt::print("\n");
  double gen_ms = ms_since(t_gen);
  if (!o.quiet) {
    fmt::print(stderr, "{}\n", ex.describe());
    fmt::print(stderr, "load {:.1f} ms | prompt {} tokens, {:.1f} t/s | generation {} tokens, {:.1f} t/s ({})\n",
               load_ms, ids.size(), ids.size() / (prompt_ms / 1e3), generated,
               generated > 1 ? (generated - 1) / (gen_ms / 1e3) : 0.0, ex.target());
  }
  if (o.run.profile) fmt::print(stderr, "{}", ex.profile_report());
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* c = app.add_subcommand("generate", "Generate text from a prompt, streaming it as it comes");
  add_run_options(c, o->run);
  c->add_option("-p,--prompt", o->prompt, "the prompt text")->required();
  c->add_option("-n,--n-predict", o->n_predict, "tokens to generate")->capture_default_str();
  c->add_flag("--greedy", o->greedy, "always take the most likely token");
  c->add_option("--temp", o->temp, "sampling temperature")->capture_default_str();
  c->add_option("--top-k", o->top_k, "sample among the k most likely tokens (0: all)")->capture_default_str();
  c->add_option("--top-p", o->top_p, "sample within this probability mass")->capture_default_str();
  c->add_option("--seed", o->seed, "random seed")->capture_default_str();
  c->add_flag("--tokens", o->tokens, "print generated token ids instead of text");
  c->add_flag("--ignore-eos", o->ignore_eos, "keep generating past the end-of-sequence token");
  c->add_flag("-q,--quiet", o->quiet, "no timing line on stderr");
  c->add_flag("--profile", o->run.profile, "time every kernel (cpu, vulkan) and print a table on stderr");
  c->callback([o] { run_generate(*o); });
}

}  // namespace nibble::tools
