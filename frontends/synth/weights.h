// Random weights for synthetic models, from a counter-based generator: element i of a tensor is a pure
// function of (seed, tensor name, i), so rows can be made in any order, on any thread, and the same seed
// always gives the same model.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "frontends/synth/presets.h"

namespace nibble::synth {

// SplitMix64's output function: a bijective 64-bit mix, good enough for a counter-based generator.
inline uint64_t mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class CounterRng {
 public:
  CounterRng(uint64_t seed, std::string_view stream);
  uint64_t bits(uint64_t i) const { return mix64(key_ + (i + 1) * 0x9E3779B97F4A7C15ull); }
  // About N(0, 1): the sum of four 16-bit uniforms from one 64-bit draw (Irwin-Hall), scaled to unit
  // variance. Bounded by +-3.46; smooth enough for random weights and much cheaper than Box-Muller.
  float normal(uint64_t i) const {
    const uint64_t b = bits(i);
    const uint32_t s = uint32_t(b & 0xFFFF) + uint32_t((b >> 16) & 0xFFFF) + uint32_t((b >> 32) & 0xFFFF) +
                       uint32_t(b >> 48);
    return (float(s) - 131070.0f) * (1.0f / 37837.23f);
  }

 private:
  uint64_t key_;
};

// How a tensor's elements are drawn: mean + std * normal.
struct WeightInit {
  float mean = 0.0f;
  float std = 1.0f;
};

// The scales of README §4's synth-256 recipe, by tensor role: token_embd N(0, 1); attention and the
// gate/up projections N(0, 1/sqrt(n_embd)); ffn_down N(0, 1/sqrt(n_ff)); output N(0, 3/sqrt(n_embd));
// norm weights 1 + 0.1 N(0, 1). Each projection keeps unit-variance inputs at unit variance, so the
// residual stream grows slowly over the layers and the norms keep every layer's input in range.
WeightInit weight_init(const SynthPreset& p, const std::string& name);

// Row `row` (ncols elements) of tensor `name`.
void weight_row(const CounterRng& rng, const WeightInit& init, int64_t row, int64_t ncols, float* out);

}  // namespace nibble::synth
