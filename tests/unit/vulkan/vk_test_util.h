// Shared pieces of the Vulkan tests: one validated device for the whole binary (skipped cleanly when
// there is none), a fixture that fails a test on any validation message, graph building with random
// weights in every format, and normalized-error comparison against the reference executor.
#pragma once
#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "codegen/spirv/vulkan_model.h"
#include "ir/builder.h"
#include "ir/interp/interpreter.h"
#include "runtime/vulkan/device.h"
#include "support/error.h"

namespace nibble::vk::testing {

struct SharedDevice {
  std::shared_ptr<Context> ctx;
  std::string skip_reason;
  bool validation = false;
};

// Validation is on unless NIBBLE_VK_VALIDATION=0 (or the layer is not installed: then noted).
inline SharedDevice& shared_device() {
  static SharedDevice d = [] {
    SharedDevice s;
    const char* env = std::getenv("NIBBLE_VK_VALIDATION");
    bool want = !(env && std::string(env) == "0");
    try {
      s.ctx = Context::create({0, want});
      s.validation = want;
    } catch (const Error& e) {
      std::string what = e.what();
      if (want && what.find("validation") != std::string::npos) {
        try {
          s.ctx = Context::create({0, false});
          std::fprintf(stderr, "note: Vulkan validation layer unavailable, running without it\n");
        } catch (const Error& e2) {
          s.skip_reason = e2.what();
        }
      } else {
        s.skip_reason = what;
      }
    }
    return s;
  }();
  return d;
}

// Tests that need a device derive from this: skip without one, fail on validation messages.
class VulkanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_ = shared_device().ctx;
    if (!ctx_) GTEST_SKIP() << "no Vulkan device: " << shared_device().skip_reason;
    ctx_->take_messages();
  }
  void TearDown() override {
    if (!ctx_) return;
    std::vector<std::string> msgs = ctx_->take_messages();
    for (const std::string& m : msgs) ADD_FAILURE() << "Vulkan validation: " << m;
  }
  std::shared_ptr<Context> ctx_;
};

template <class P>
class VulkanParamTest : public ::testing::TestWithParam<P> {
 protected:
  void SetUp() override {
    ctx_ = shared_device().ctx;
    if (!ctx_) GTEST_SKIP() << "no Vulkan device: " << shared_device().skip_reason;
    ctx_->take_messages();
  }
  void TearDown() override {
    if (!ctx_) return;
    for (const std::string& m : ctx_->take_messages()) ADD_FAILURE() << "Vulkan validation: " << m;
  }
  std::shared_ptr<Context> ctx_;
};

// A module under construction: @forward(%tokens, %pos), weights with owned random bytes.
struct Graph {
  std::unique_ptr<Module> m = std::make_unique<Module>();
  Function* f = nullptr;
  std::unique_ptr<Builder> b;
  Value* tokens = nullptr;
  Value* pos = nullptr;
  std::vector<std::shared_ptr<std::vector<uint8_t>>> blobs;
  std::mt19937 rng{1234};

  explicit Graph(const std::string& name = "test") {
    m->name = name;
    f = m->add_function("forward");
    b = std::make_unique<Builder>(*m, *f);
    Dim n = Dim::sym("n_tokens");
    tokens = f->add_arg("tokens", {DType::I32, {n}});
    pos = f->add_arg("pos", {DType::I32, {n}});
  }

  std::vector<float> random(size_t n, float scale = 1.0f) {
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
  }

  // A weight [rows, K] of type t, made by quantizing random values with the reference quantizer.
  Value* weight(const std::string& name, DType t, int64_t rows, int64_t K, float scale = 1.0f) {
    std::vector<float> vals = random(size_t(rows * K), scale);
    auto blob = std::make_shared<std::vector<uint8_t>>(size_t(rows * row_bytes(t, K)));
    for (int64_t r = 0; r < rows; ++r)
      dtype_info(t).quantize_row(vals.data() + r * K, blob->data() + r * row_bytes(t, K), K);
    WeightDecl& w = b->declare_weight(name, {t, {rows, K}});
    w.data = blob->data();
    blobs.push_back(blob);
    return b->weight(name);
  }

  Value* vector(const std::string& name, int64_t n, float scale = 1.0f, float offset = 0.0f) {
    std::vector<float> vals = random(size_t(n), scale);
    for (float& x : vals) x += offset;
    auto blob = std::make_shared<std::vector<uint8_t>>(size_t(n) * 4);
    std::memcpy(blob->data(), vals.data(), blob->size());
    WeightDecl& w = b->declare_weight(name, {DType::F32, {n}});
    w.data = blob->data();
    blobs.push_back(blob);
    return b->weight(name);
  }

  // f32 activations [n_tokens, D]: rows of a random table selected by the token ids.
  Value* input(const std::string& name, int64_t vocab, int64_t D, float scale = 1.0f) {
    return b->create("embedding", {weight(name, DType::F32, vocab, D, scale), tokens});
  }

  void result(Value* v) { f->results.push_back(v); }
};

inline double normalized_error(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double d = double(got[i]) - double(want[i]);
    if (std::isnan(got[i]) != std::isnan(want[i])) return INFINITY;
    num += d * d;
    den += double(want[i]) * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

inline std::vector<float> as_floats(const std::vector<uint32_t>& w) {
  std::vector<float> f(w.size());
  std::memcpy(f.data(), w.data(), w.size() * 4);
  return f;
}

inline std::vector<int32_t> iota_pos(int32_t first, size_t n) {
  std::vector<int32_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = first + int32_t(i);
  return p;
}

// Feature variants the tests force: every fallback alone, all off, the device's choice; each with a
// tile configuration, so that both batch kernels (shared-memory GEMM and multi-token GEMV) and odd
// tile shapes run whatever device the tests see.
enum class Tiles { Device, Gpu, Odd, OddMultiToken };

struct Variant {
  const char* name;
  FeatureOverrides o;
  Tiles tiles = Tiles::Device;
};

inline void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

inline VulkanCompileOptions compile_options(const Variant& v) {
  VulkanCompileOptions co;
  co.auto_tiles = v.tiles == Tiles::Device;
  switch (v.tiles) {
    case Tiles::Device: break;
    case Tiles::Gpu:
      co.gemv = {64, 2, 1};
      co.gemm = {64, 64, 32, 4, 4};
      co.batch = VulkanCompileOptions::Batch::TiledGemm;
      break;
    case Tiles::Odd:
      co.gemv = {32, 3, 2};
      co.gemm = {32, 16, 32, 2, 4};
      co.batch = VulkanCompileOptions::Batch::TiledGemm;
      break;
    case Tiles::OddMultiToken:
      co.gemv = {16, 5, 1};
      co.batch = VulkanCompileOptions::Batch::MultiTokenGemv;
      co.batch_tokens = 3;
      break;
  }
  return co;
}

inline std::vector<Variant> variants() {
  std::vector<Variant> v;
  v.push_back({"device", {}, Tiles::Device});
  FeatureOverrides off;
  off.subgroup = off.storage16 = off.storage8 = off.float16 = off.int_dot = false;
  v.push_back({"all_off_gpu_tiles", off, Tiles::Gpu});
  FeatureOverrides no_sg;
  no_sg.subgroup = false;
  v.push_back({"no_subgroup_odd_tiles", no_sg, Tiles::Odd});
  FeatureOverrides no_s16;
  no_s16.storage16 = false;
  no_s16.storage8 = false;
  v.push_back({"no_16_8_bit_storage_gpu_tiles", no_s16, Tiles::Gpu});
  FeatureOverrides no_f16;
  no_f16.float16 = false;
  v.push_back({"no_float16_odd_multitoken", no_f16, Tiles::OddMultiToken});
  return v;
}

}  // namespace nibble::vk::testing
