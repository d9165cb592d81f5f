#include "frontends/synth/presets.h"

#include <fmt/format.h>

namespace nibble::synth {

const std::vector<SynthPreset>& presets() {
  static const std::vector<SynthPreset> kPresets = {
      // name, description, vocab, embd, ff, layers, heads, kv heads, context
      {"tiny", "test-sized llama: 2 layers, n_embd 256, GQA 2, vocab 1024", 1024, 256, 768, 2, 8, 4, 512},
      {"tinyllama-1.1b", "TinyLlama-1.1B shapes: 22 layers, n_embd 2048, GQA 8, vocab 32000", 32000, 2048, 5632, 22,
       32, 4, 2048},
      // Llama 2 7B's context and epsilon.
      {"llama-7b", "Llama-7B shapes: 32 layers, n_embd 4096, no GQA, vocab 32000", 32000, 4096, 11008, 32, 32, 32,
       4096},
  };
  return kPresets;
}

const SynthPreset* find_preset(std::string_view name) {
  for (const SynthPreset& p : presets())
    if (p.name == name) return &p;
  return nullptr;
}

std::string preset_names() {
  std::string r;
  for (const SynthPreset& p : presets()) r += fmt::format("{}{}", r.empty() ? "" : " ", p.name);
  return r;
}

}  // namespace nibble::synth
