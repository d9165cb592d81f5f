// Shapes of the synthetic models `nibble synth` writes: real model shapes, random weights.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::synth {

struct SynthPreset {
  std::string name;
  std::string description;
  int64_t n_vocab = 0, n_embd = 0, n_ff = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ctx = 0;
  double rope_freq_base = 10000.0;
  double rms_eps = 1e-5;
  int64_t head_dim() const { return n_embd / n_head; }
  int64_t n_embd_kv() const { return head_dim() * n_head_kv; }
};

// tiny (for tests), tinyllama-1.1b, llama-7b.
const std::vector<SynthPreset>& presets();
const SynthPreset* find_preset(std::string_view name);  // null when unknown
std::string preset_names();                              // space-separated, for messages

}  // namespace nibble::synth
