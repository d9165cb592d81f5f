// `nibble synth`: a llama-architecture GGUF of a preset's real shapes with random weights, full llama.*
// metadata and a generated SPM vocabulary. Weights are made row by row and encoded to the requested type
// (a single format or a llama.cpp mix, chosen per tensor as llama-quantize would) while the file is
// written, so even a 7B-shaped model needs only a few chunks of rows in memory.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "frontends/quantize/mix_policy.h"
#include "frontends/synth/presets.h"

namespace nibble::synth {

struct SynthOptions {
  std::string arch = "llama";
  std::string preset;
  std::string type = "f32";               // as `nibble quantize --type`
  std::vector<std::string> tensor_types;  // "PATTERN=TYPE" overrides
  bool pure = false;
  uint64_t seed = 0;
  int threads = 0;  // <= 0: all cores
};

struct SynthTensor {
  std::string name;
  std::vector<int64_t> ne;  // GGML order
  DType type = DType::F32;
  quant::TypeChoice choice{};  // for quantizable tensors
  bool quantizable = false;
  uint64_t bytes = 0;
};

struct SynthPlan {
  SynthPreset preset;
  quant::QuantTarget target;
  std::vector<SynthTensor> tensors;  // in file order (llama.cpp's quantized-file order)
  int n_fallback = 0;
  uint64_t bytes() const;
  int64_t n_params() const;
};

// Validates the options (unknown arch, preset or type throw nibble::Error) and decides every tensor's type.
SynthPlan plan_synth(const SynthOptions& o);

// Writes the model; `on_tensor` runs after each tensor's bytes are written, in order.
void write_synth(const SynthPlan& plan, const SynthOptions& o, const std::string& out_path,
                 const std::function<void(const SynthTensor&, size_t index)>& on_tensor = {});

}  // namespace nibble::synth
