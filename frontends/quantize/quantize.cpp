#include "frontends/quantize/quantize.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "frontends/gguf/gguf.h"
#include "frontends/quantize/convert.h"
#include "support/error.h"

namespace nibble::quant {

namespace {

uint64_t tensor_bytes(DType t, const std::vector<int64_t>& ne) {
  int64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
  return uint64_t(row_bytes(t, ne[0]) * rows);
}

// Keys llama-quantize removes (split bookkeeping) or sets itself.
bool is_replaced_key(const std::string& k) {
  return k == "general.quantization_version" || k == "general.file_type" || k == "split.no" ||
         k == "split.count" || k == "split.tensors.count";
}

}  // namespace

uint64_t QuantizePlan::bytes_from() const {
  uint64_t n = 0;
  for (const TensorPlan& t : tensors) n += t.bytes_from;
  return n;
}

uint64_t QuantizePlan::bytes_to() const {
  uint64_t n = 0;
  for (const TensorPlan& t : tensors) n += t.bytes_to;
  return n;
}

QuantizePlan plan_quantize(const gguf::File& in, const QuantizeOptions& o) {
  std::optional<QuantTarget> target = parse_target(o.type);
  if (!target) fail("unknown type '{}' (expected one of: {})", o.type, target_names());
  std::vector<TypeOverride> overrides;
  for (const std::string& spec : o.tensor_types) overrides.push_back(parse_override(spec));

  QuantizePlan plan;
  plan.target = *target;
  MixPolicy policy(model_shape_of(in), *target, o.pure, std::move(overrides));

  std::vector<const gguf::TensorInfo*> order;
  for (const gguf::TensorInfo& t : in.tensors()) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const gguf::TensorInfo* a, const gguf::TensorInfo* b) {
    return tensor_order_less(a->name, b->name);
  });

  for (const gguf::TensorInfo* t : order) {
    TensorPlan p;
    p.name = t->name;
    p.ne = t->ne;
    p.from = p.to = t->dtype;
    p.quantizable = is_quantizable(t->name, t->ne);
    if (p.quantizable) {
      p.choice = policy.choose(t->name, t->ne);
      p.to = p.choice.type;
    }
    p.convert = p.to != p.from;
    if (p.convert) {
      const DTypeInfo& from = dtype_info(p.from);
      if (!from.dequantize_row) fail("{}: tensor {}: cannot convert from {}", in.path(), p.name, from.name);
      if (from.quantized && !o.allow_requantize)
        fail("{}: tensor {} is {}: requantizing from {} is disabled (pass --allow-requantize)", in.path(), p.name,
             from.name, from.name);
    }
    p.bytes_from = t->nbytes;
    p.bytes_to = p.convert ? tensor_bytes(p.to, p.ne) : t->nbytes;
    plan.tensors.push_back(std::move(p));
  }
  plan.n_fallback = policy.n_fallback();
  plan.n_fitting = policy.n_fitting();
  return plan;
}

void write_quantized(const gguf::File& in, const QuantizePlan& plan, const std::string& out_path,
                     const QuantizeOptions& o, const std::function<void(const TensorPlan&, size_t)>& on_tensor) {
  gguf::Writer w;
  for (const auto& [key, value] : in.metadata())
    if (!is_replaced_key(key)) w.set(key, value);
  w.set_u32("general.quantization_version", kQuantizationVersion);
  w.set_u32("general.file_type", static_cast<uint32_t>(plan.target.ftype));

  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const TensorPlan& p = plan.tensors[i];
    const gguf::TensorInfo& t = in.tensor(p.name);
    w.add_tensor_stream(p.name, p.to, p.ne, [&t, &p, &o, i, &on_tensor](const gguf::Writer::ByteSink& out) {
      if (!p.convert) {
        out(t.data, t.nbytes);
      } else {
        const int64_t ncols = p.ne[0];
        const int64_t nrows = t.n_elements() / ncols;
        const int64_t src_row_bytes = row_bytes(p.from, ncols);
        const DequantizeRowFn decode = dtype_info(p.from).dequantize_row;
        const uint8_t* base = t.data;
        convert_rows(nrows, ncols, p.to, [&](int64_t r, float* row) { decode(base + r * src_row_bytes, row, ncols); },
                     out, o.threads);
      }
      if (on_tensor) on_tensor(p, i);
    });
  }

  // Through a temporary file: OUT may be IN (still mapped), and a failed run leaves OUT as it was.
  const std::string tmp = out_path + ".tmp";
  w.write(tmp);
  if (std::rename(tmp.c_str(), out_path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    fail("{}: cannot write: {}", out_path, std::strerror(e));
  }
}

}  // namespace nibble::quant
