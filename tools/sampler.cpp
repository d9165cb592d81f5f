#include "tools/sampler.h"

#include <algorithm>
#include <cmath>

namespace nibble::tools {

int32_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return int32_t(best);
}

int32_t Sampler::sample(const float* logits, int64_t n_vocab) {
  if (o_.greedy || o_.temperature <= 0) return argmax(logits, n_vocab);
  candidates_.clear();
  for (int64_t i = 0; i < n_vocab; ++i) candidates_.emplace_back(logits[i], int32_t(i));
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t k = o_.top_k > 0 ? std::min<size_t>(size_t(o_.top_k), candidates_.size()) : candidates_.size();
  std::partial_sort(candidates_.begin(), candidates_.begin() + k, candidates_.end(), by_logit);
  candidates_.resize(k);
  // Softmax at the temperature, then keep the smallest prefix whose mass reaches top_p.
  const float mx = candidates_[0].first;
  double sum = 0;
  for (auto& c : candidates_) sum += (c.first = std::exp((c.first - mx) / o_.temperature));
  double mass = 0;
  size_t keep = candidates_.size();
  for (size_t i = 0; i < candidates_.size(); ++i) {
    mass += candidates_[i].first / sum;
    if (mass >= o_.top_p) {
      keep = i + 1;
      break;
    }
  }
  candidates_.resize(keep);
  double total = 0;
  for (auto& c : candidates_) total += c.first;
  double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  for (auto& c : candidates_) {
    r -= c.first;
    if (r <= 0) return c.second;
  }
  return candidates_.back().second;
}

}  // namespace nibble::tools
