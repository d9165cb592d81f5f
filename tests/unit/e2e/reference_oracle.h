// Loading llama.cpp's reference outputs (../shared/reference) and comparing logits with them.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace nibble::testing {

inline std::string shared_path(const std::string& rel) { return std::string(NIBBLE_SHARED_DIR) + "/" + rel; }

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(in);
}

inline std::vector<float> read_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<float> v(size_t(in.tellg()) / sizeof(float));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
  return v;
}

struct LogitsDiff {
  double max_abs = 0, rms = 0;
  int argmax_equal = 0, rows = 0;
  int argmax_disagree_clear = 0;  // disagreements where the reference's top-2 gap exceeds 2 * max_abs
};

inline LogitsDiff compare_logits(const std::vector<float>& got, const std::vector<float>& want, int64_t n_vocab) {
  LogitsDiff d;
  EXPECT_EQ(got.size(), want.size());
  double ss = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    double e = std::abs(double(got[i]) - want[i]);
    if (!(e <= d.max_abs)) d.max_abs = std::isnan(e) ? INFINITY : e;
    ss += e * e;
  }
  d.rms = std::sqrt(ss / double(want.size()));
  d.rows = int(want.size() / size_t(n_vocab));
  for (int r = 0; r < d.rows; ++r) {
    const float* g = got.data() + r * n_vocab;
    const float* w = want.data() + r * n_vocab;
    int64_t ag = 0, aw = 0, second = -1;
    for (int64_t i = 1; i < n_vocab; ++i) {
      if (g[i] > g[ag]) ag = i;
      if (w[i] > w[aw]) aw = i;
    }
    for (int64_t i = 0; i < n_vocab; ++i)
      if (i != aw && (second < 0 || w[i] > w[second])) second = i;
    if (ag == aw) {
      ++d.argmax_equal;
    } else if (w[aw] - w[second] > 2 * d.max_abs) {
      ++d.argmax_disagree_clear;
    }
  }
  return d;
}

}  // namespace nibble::testing
