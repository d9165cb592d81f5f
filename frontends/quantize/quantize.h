// The quantization driver: a GGUF model in, the same model with its weights re-encoded out, as
// llama-quantize writes it (metadata copied, general.file_type set, tensors in llama.cpp's order).
// Tensors are converted row chunk by row chunk while the output is written.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "frontends/quantize/mix_policy.h"

namespace nibble::gguf { class File; }

namespace nibble::quant {

struct QuantizeOptions {
  std::string type;                       // a single format or a mix (parse_target)
  std::vector<std::string> tensor_types;  // "PATTERN=TYPE" overrides (parse_override)
  bool allow_requantize = false;          // re-encode tensors that are already quantized
  bool pure = false;                      // no mix: every quantizable tensor gets the base type
  int threads = 0;                        // <= 0: all cores
};

struct TensorPlan {
  std::string name;
  std::vector<int64_t> ne;
  DType from = DType::F32, to = DType::F32;
  bool quantizable = false;  // a weight llama-quantize converts (else copied as it is)
  bool convert = false;      // bytes are re-encoded (from != to)
  TypeChoice choice{};       // the policy's decision, when quantizable
  uint64_t bytes_from = 0, bytes_to = 0;
};

struct QuantizePlan {
  QuantTarget target;
  std::vector<TensorPlan> tensors;  // in output order
  int n_fallback = 0;               // tensors whose row length did not fit the type asked for
  int n_fitting = 0;
  uint64_t bytes_from() const;
  uint64_t bytes_to() const;
};

// Decides every tensor's type. Throws nibble::Error for an unknown type, a bad --tensor-type, or a
// quantized input tensor to re-encode without allow_requantize.
QuantizePlan plan_quantize(const gguf::File& in, const QuantizeOptions& o);

// Writes the quantized model to `out_path` (through a temporary file renamed at the end, so OUT may be
// IN). `on_tensor` runs after each tensor's bytes are written, in order.
void write_quantized(const gguf::File& in, const QuantizePlan& plan, const std::string& out_path,
                     const QuantizeOptions& o,
                     const std::function<void(const TensorPlan&, size_t index)>& on_tensor = {});

// general.quantization_version as llama.cpp writes it (GGML_QNT_VERSION). It and general.file_type are
// dropped from the input's metadata and appended at the end, as llama-quantize's gguf_set_val does.
inline constexpr uint32_t kQuantizationVersion = 2;

}  // namespace nibble::quant
