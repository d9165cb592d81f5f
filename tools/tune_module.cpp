#include "tools/tune_module.h"

#include <algorithm>
#include <random>

#include "ir/builder.h"
#include "support/error.h"

namespace nibble::tools {

TuneModule::TuneModule(DType weight, int64_t N, int64_t K, int max_tokens)
    : weight_type_(weight), N_(N), K_(K), V_(std::min<int64_t>(N, 64)), max_tokens_(max_tokens) {
  if (N < 1 || K < 1 || max_tokens < 1) fail("tune: a {}x{} weight product over {} tokens", N, K, max_tokens);
  if (!dtype_info(weight).quantize_row) fail("tune: {} weights have no reference quantizer", dtype_name(weight));
  std::mt19937 rng(20250101);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  table_ = std::make_shared<std::vector<uint8_t>>(size_t(V_ * K * 4));
  float* t = reinterpret_cast<float*>(table_->data());
  for (int64_t i = 0; i < V_ * K; ++i) t[i] = dist(rng);
  // Up to 256 distinct rows, repeated: big weights are made in milliseconds, timing is the same.
  const int64_t rb = row_bytes(weight, K), distinct = std::min<int64_t>(N, 256);
  weight_ = std::make_shared<std::vector<uint8_t>>(size_t(N * rb));
  std::vector<float> row(static_cast<size_t>(K));
  for (int64_t r = 0; r < distinct; ++r) {
    for (float& x : row) x = dist(rng) * 0.05f;
    dtype_info(weight).quantize_row(row.data(), weight_->data() + r * rb, K);
  }
  for (int64_t r = distinct; r < N; ++r) std::copy_n(weight_->data() + (r % distinct) * rb, rb, weight_->data() + r * rb);
  for (int i = 0; i < max_tokens; ++i) {
    tokens_.push_back(int32_t((i * 7 + 3) % V_));
    pos_.push_back(i);
  }
}

std::unique_ptr<Module> TuneModule::build() const {
  auto m = std::make_unique<Module>();
  m->name = "tune";
  Function* f = m->add_function("forward");
  Builder b(*m, *f);
  Dim n = Dim::sym("n_tokens");
  Value* tokens = f->add_arg("tokens", {DType::I32, {n}});
  f->add_arg("pos", {DType::I32, {n}});
  m->attrs.set("n_ctx", int64_t(max_tokens_ + 1));
  WeightDecl& td = b.declare_weight("table", {DType::F32, {Dim(V_), Dim(K_)}});
  td.data = table_->data();
  WeightDecl& wd = b.declare_weight("w", {weight_type_, {Dim(N_), Dim(K_)}});
  wd.data = weight_->data();
  m->keep_alive.push_back(table_);
  m->keep_alive.push_back(weight_);
  Value* x = b.create("embedding", {b.weight("table"), tokens});
  Value* w = b.weight("w");
  if (weight_type_ != DType::F32) w = b.dequant(w);
  Attrs a;
  a.set("transpose_b", true);
  Value* y = b.create("matmul", {x, w}, std::move(a));
  f->results.push_back(y);
  m->attrs.set("n_vocab", N_);
  return m;
}

}  // namespace nibble::tools
