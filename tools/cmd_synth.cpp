// nibble synth: a llama GGUF of real shapes with random weights and a generated vocabulary, written
// straight in the requested format or mix.
#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "frontends/synth/synth.h"
#include "support/error.h"
#include "tools/commands.h"

namespace nibble::tools {

namespace {

struct SynthCliOptions {
  synth::SynthOptions s;
  std::string out;
  bool list = false;
  bool quiet = false;
};

double mib(uint64_t bytes) { return double(bytes) / (1024.0 * 1024.0); }

void run_synth(const SynthCliOptions& o) {
  if (o.list) {
    for (const synth::SynthPreset& p : synth::presets()) fmt::print("{:<16} {}\n", p.name, p.description);
    return;
  }
  if (o.s.preset.empty()) fail("synth: --preset is required (one of: {})", synth::preset_names());
  if (o.out.empty()) fail("synth: -o OUT.gguf is required");
  auto t0 = std::chrono::steady_clock::now();
  synth::SynthPlan plan = synth::plan_synth(o.s);
  const synth::SynthPreset& p = plan.preset;
  fmt::print("synth {}: {} layers, n_embd {}, n_ff {}, {}/{} heads, vocab {}, {:.1f}M parameters, {} (seed {})\n",
             p.name, p.n_layer, p.n_embd, p.n_ff, p.n_head, p.n_head_kv, p.n_vocab, double(plan.n_params()) / 1e6,
             plan.target.name, o.s.seed);
  const size_t n = plan.tensors.size();
  const int w = int(fmt::format("{}", n).size());
  synth::write_synth(plan, o.s, o.out, [&](const synth::SynthTensor& t, size_t i) {
    if (!o.quiet) {
      fmt::print("[{:>{}}/{}] {:<32} {:<5} {:9.3f} MiB\n", i + 1, w, n, t.name, dtype_name(t.type), mib(t.bytes));
      if (t.choice.fallback) fmt::print("    fallback: {}: {}\n", t.name, t.choice.note);
      std::fflush(stdout);
    }
  });
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("wrote {}: {:.2f} MiB of tensors in {:.2f} s\n", o.out, mib(plan.bytes()), secs);
}

}  // namespace

void add_synth_command(CLI::App& app) {
  auto o = std::make_shared<SynthCliOptions>();
  CLI::App* c = app.add_subcommand("synth", "Write a synthetic model: real shapes, random weights, generated vocab");
  c->add_option("--arch", o->s.arch, "architecture (llama)")->capture_default_str();
  c->add_option("--preset", o->s.preset, "shape preset: " + synth::preset_names());
  c->add_option("--type,-t", o->s.type, "format or mix, as for quantize")->capture_default_str();
  c->add_option("--tensor-type", o->s.tensor_types, "PATTERN=TYPE overrides, as for quantize");
  c->add_flag("--pure", o->s.pure, "no mix: every quantized tensor gets the base type");
  c->add_option("--seed", o->s.seed, "random seed")->capture_default_str();
  c->add_option("--threads", o->s.threads, "threads (default: all cores)");
  c->add_option("-o,--output", o->out, "OUT.gguf");
  c->add_flag("--list-presets", o->list, "list the presets and exit");
  c->add_flag("-q,--quiet", o->quiet, "no per-tensor lines");
  c->callback([o] { run_synth(*o); });
}

}  // namespace nibble::tools
