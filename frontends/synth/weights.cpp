#include "frontends/synth/weights.h"

#include <cmath>

#include "support/error.h"

namespace nibble::synth {

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

CounterRng::CounterRng(uint64_t seed, std::string_view stream) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a of the stream name, then mixed with the seed
  for (char c : stream) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ull;
  key_ = mix64(mix64(seed) ^ h);
}

WeightInit weight_init(const SynthPreset& p, const std::string& name) {
  const float e = 1.0f / std::sqrt(float(p.n_embd));
  if (ends_with(name, "_norm.weight")) return {1.0f, 0.1f};
  if (name == "token_embd.weight") return {0.0f, 1.0f};
  if (name == "output.weight") return {0.0f, 3.0f * e};
  if (ends_with(name, "ffn_down.weight")) return {0.0f, 1.0f / std::sqrt(float(p.n_ff))};
  for (std::string_view proj : {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
                                "ffn_gate.weight", "ffn_up.weight"})
    if (ends_with(name, proj)) return {0.0f, e};
  fail("synth: no initialization for tensor {}", name);
}

void weight_row(const CounterRng& rng, const WeightInit& init, int64_t row, int64_t ncols, float* out) {
  const uint64_t base = uint64_t(row) * uint64_t(ncols);
  for (int64_t c = 0; c < ncols; ++c) out[c] = init.mean + init.std * rng.normal(base + uint64_t(c));
}

}  // namespace nibble::synth
