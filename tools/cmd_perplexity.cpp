// nibble perplexity: perplexity of a text file, computed as llama-perplexity does by default:
// chunks of --ctx tokens, each starting with BOS from an empty cache, scoring the second half.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "support/error.h"
#include "tools/commands.h"
#include "tools/run_options.h"

namespace nibble::tools {

namespace {

struct PerplexityOptions {
  RunOptions run;
  std::string file;
  int ctx = 512;
  bool json = false;
};

// -log p(target) from one row of logits; the sum of exponentials runs in double as llama.cpp's.
double nll_of(const float* logits, int64_t n_vocab, int32_t target) {
  float mx = logits[0];
  for (int64_t i = 1; i < n_vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(logits[i] - mx);
  return -(double(logits[target] - mx) - std::log(sum));
}

void run_perplexity(PerplexityOptions o) {
  std::ifstream in(o.file, std::ios::binary);
  if (!in) fail("{}: cannot open", o.file);
  std::stringstream ss;
  ss << in.rdbuf();
  if (o.ctx < 4) fail("perplexity: --ctx must be at least 4, got {}", o.ctx);
  if (o.run.n_ctx < o.ctx) o.run.n_ctx = o.ctx;
  RunnableModel rm = open_model(o.run, true);
  const Tokenizer& tok = *rm.model.tokenizer;
  Executor& ex = *rm.exec;
  std::vector<int32_t> tokens = tok.encode(ss.str(), true, false);
  const int n_chunk = int(tokens.size() / size_t(o.ctx));
  if (n_chunk == 0) fail("perplexity: {} has {} tokens, fewer than --ctx {}", o.file, tokens.size(), o.ctx);
  const int first = o.ctx / 2;
  const int64_t V = ex.n_vocab();
  std::vector<int32_t> pos(size_t(o.ctx));
  for (int i = 0; i < o.ctx; ++i) pos[i] = i;
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  std::vector<double> running;
  for (int c = 0; c < n_chunk; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + size_t(c) * o.ctx, tokens.begin() + size_t(c + 1) * o.ctx);
    if (tok.vocab().add_bos && tok.vocab().bos >= 0) chunk[0] = tok.vocab().bos;
    ex.reset();
    std::span<const float> logits = ex.forward(chunk, pos);
    for (int j = first; j < o.ctx - 1; ++j) {
      double v = nll_of(logits.data() + int64_t(j) * V, V, tokens[size_t(c) * o.ctx + j + 1]);
      nll += v;
      nll2 += v * v;
      ++count;
    }
    running.push_back(std::exp(nll / count));
    if (!o.json) {
      fmt::print("[{}]{:.4f},", c + 1, running.back());
      std::fflush(stdout);
    }
  }
  double mean = nll / count, ppl = std::exp(mean);
  double var = nll2 / count - mean * mean;
  double err = var > 0 && count > 1 ? std::sqrt(var / (count - 1)) * ppl : 0.0;
  if (o.json) {
    fmt::print("{{\"chunks\": {}, \"ctx\": {}, \"tokens_scored\": {}, \"ppl\": {:.6f}, \"ppl_error\": {:.6f}, \"running\": [{:.6f}]}}\n",
               n_chunk, o.ctx, count, ppl, err, fmt::join(running, ", "));
  } else {
    fmt::print("\nFinal estimate: PPL = {:.4f} +/- {:.5f}\n", ppl, err);
  }
}

}  // namespace

void add_perplexity_command(CLI::App& app) {
  auto o = std::make_shared<PerplexityOptions>();
  CLI::App* c = app.add_subcommand("perplexity", "Perplexity of a text file, as llama-perplexity computes it");
  add_run_options(c, o->run);
  c->add_option("-f,--file", o->file, "the text")->required();
  c->add_option("--chunk,-c", o->ctx, "tokens per chunk (llama-perplexity's -c)")->capture_default_str();
  c->add_flag("--json", o->json, "print a JSON object");
  c->callback([o] { run_perplexity(*o); });
}

}  // namespace nibble::tools
