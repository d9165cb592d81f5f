// nibble quantize: re-encode a GGUF model's weights to a format or a llama.cpp mix (q4_k_m, ...), choosing
// each tensor's type as llama-quantize does.
#include <cctype>
#include <chrono>
#include <cstdio>

#include <filesystem>

#include <fmt/format.h>

#include "frontends/gguf/gguf.h"
#include "frontends/quantize/quantize.h"
#include "support/error.h"
#include "tools/commands.h"

namespace nibble::tools {

namespace {

struct QuantizeCliOptions {
  std::string in, out;
  quant::QuantizeOptions q;
};

double mib(uint64_t bytes) { return double(bytes) / (1024.0 * 1024.0); }

std::string shape_of(const std::vector<int64_t>& ne) {
  std::string s;
  for (size_t d = 0; d < ne.size(); ++d) s += fmt::format("{}{}", d ? " x " : "", ne[d]);
  return s;
}

void run_quantize(const QuantizeCliOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  if (o.in == o.out || std::filesystem::equivalent(o.in, o.out, ec))
    fail("quantize: {} is both the input and the output; write to another file", o.in);
  auto in = gguf::File::open(o.in);
  quant::QuantizePlan plan = quant::plan_quantize(*in, o.q);
  std::string given = o.q.type;
  for (char& ch : given) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  fmt::print("quantizing {} -> {} as {}{}{}\n", o.in, o.out, plan.target.name,
             given != plan.target.name ? fmt::format(" ({} is llama-quantize's alias of it)", o.q.type) : "",
             o.q.pure ? " (pure: no mix)" : "");
  const size_t n = plan.tensors.size();
  const int w = int(fmt::format("{}", n).size());
  quant::write_quantized(*in, plan, o.out, o.q, [&](const quant::TensorPlan& p, size_t i) {
    fmt::print("[{:>{}}/{}] {:<32} {:<16} {:>5} -> {:<5} {:9.3f} MiB -> {:9.3f} MiB{}\n", i + 1, w, n, p.name,
               "[" + shape_of(p.ne) + "]", dtype_name(p.from), dtype_name(p.to), mib(p.bytes_from), mib(p.bytes_to),
               p.convert ? "" : (p.quantizable ? " (unchanged)" : " (copied)"));
    if (p.choice.fallback) fmt::print("    fallback: {}: {}\n", p.name, p.choice.note);
    std::fflush(stdout);
  });
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("model size: {:.2f} MiB -> {:.2f} MiB ({} tensors, {:.2f}x smaller) in {:.2f} s\n",
             mib(plan.bytes_from()), mib(plan.bytes_to()), n,
             plan.bytes_to() ? double(plan.bytes_from()) / double(plan.bytes_to()) : 0.0, secs);
  if (plan.n_fallback > 0)
    fmt::print("{} of {} tensor(s) required fallback quantization\n", plan.n_fallback,
               plan.n_fallback + plan.n_fitting);
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto o = std::make_shared<QuantizeCliOptions>();
  CLI::App* c = app.add_subcommand("quantize", "Quantize a GGUF model's weights (single formats or llama.cpp mixes)");
  c->add_option("input", o->in, "IN.gguf")->required();
  c->add_option("output", o->out, "OUT.gguf")->required();
  c->add_option("--type,-t", o->q.type, "a format or mix: " + quant::target_names())->required();
  c->add_option("--tensor-type", o->q.tensor_types,
                "PATTERN=TYPE: tensors whose name matches the regular expression PATTERN get TYPE (repeatable; "
                "the last match wins)");
  c->add_flag("--allow-requantize", o->q.allow_requantize, "re-encode tensors that are already quantized");
  c->add_flag("--pure", o->q.pure, "no mix: every quantized tensor gets the base type");
  c->add_option("--threads", o->q.threads, "threads (default: all cores)");
  c->callback([o] { run_quantize(*o); });
}

}  // namespace nibble::tools
