// Token sampling: greedy (argmax, lowest id on ties) or temperature / top-k / top-p with a seed.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace nibble::tools {

struct SamplerOptions {
  bool greedy = true;
  float temperature = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& o) : o_(o), rng_(o.seed) {}
  int32_t sample(const float* logits, int64_t n_vocab);

 private:
  SamplerOptions o_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;  // reused: no allocation per token
};

int32_t argmax(const float* x, int64_t n);

}  // namespace nibble::tools
