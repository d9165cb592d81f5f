// nibble logits: teacher-forced logits of every position, f32 little-endian [n_tokens x n_vocab].
#include <cstdio>
#include <fstream>

#include <fmt/format.h>

#include "support/error.h"
#include "tools/commands.h"
#include "tools/run_options.h"
#include "tools/sampler.h"

namespace nibble::tools {

namespace {

struct LogitsOptions {
  RunOptions run;
  std::vector<int32_t> tokens;
  std::string output;
};

void run_logits(const LogitsOptions& o) {
  if (o.tokens.empty()) fail("logits: --tokens is empty");
  RunnableModel rm = open_model(o.run, false);
  Executor& ex = *rm.exec;
  if (int64_t(o.tokens.size()) > ex.n_ctx())
    fail("logits: {} tokens exceed the context of {} (raise --ctx)", o.tokens.size(), ex.n_ctx());
  std::vector<int32_t> pos(o.tokens.size());
  for (size_t i = 0; i < pos.size(); ++i) pos[i] = int32_t(i);
  std::span<const float> logits = ex.forward(o.tokens, pos);
  if (o.output.empty()) {
    const int64_t V = ex.n_vocab();
    for (size_t i = 0; i < o.tokens.size(); ++i) {
      int32_t best = argmax(logits.data() + i * V, V);
      fmt::print("{}: token {} -> argmax {} ({:.4f})\n", i, o.tokens[i], best, logits[i * V + best]);
    }
    return;
  }
  std::ofstream out(o.output, std::ios::binary);
  // The host is little-endian (x86-64, AArch64), so the floats are written as they are.
  if (!out || !out.write(reinterpret_cast<const char*>(logits.data()), std::streamsize(logits.size() * sizeof(float))))
    fail("{}: cannot write", o.output);
}

}  // namespace

void add_logits_command(CLI::App& app) {
  auto o = std::make_shared<LogitsOptions>();
  CLI::App* c = app.add_subcommand("logits", "Teacher-forced logits of every position of a token sequence");
  add_run_options(c, o->run);
  c->add_option("--tokens", o->tokens, "token ids, comma-separated")->delimiter(',')->required();
  c->add_option("-o,--output", o->output, "write f32 little-endian [n_tokens x n_vocab] here (else a summary)");
  c->callback([o] { run_logits(*o); });
}

}  // namespace nibble::tools
