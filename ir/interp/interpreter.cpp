#include "ir/interp/interpreter.h"

#include <cstring>
#include <map>

#include "ir/interp/ref_kernels.h"
#include "support/error.h"

namespace nibble {

int64_t RefTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void RefTensor::row(int64_t r, float* dst) const {
  int64_t c = cols();
  if (packed) {
    dtype_info(packed_dtype).dequantize_row(packed + r * row_bytes(packed_dtype, c), dst, c);
  } else {
    std::memcpy(dst, f.data() + r * c, size_t(c) * sizeof(float));
  }
}

std::vector<float> RefTensor::to_f32() const {
  if (!packed) return f;
  std::vector<float> out(static_cast<size_t>(numel()));
  for (int64_t r = 0; r < rows(); ++r) row(r, out.data() + r * cols());
  return out;
}

namespace ref {

Kernel find_kernel(const std::string& n) {
  static const std::map<std::string, Kernel> kernels = {
      {"embedding", embedding}, {"dequant", dequant},   {"matmul", matmul},     {"qmatmul", qmatmul}, {"quantize", quantize},
      {"add", add},             {"mul", mul},           {"silu", silu},         {"gelu", gelu},
      {"swiglu", swiglu},       {"rms_norm", rms_norm}, {"layer_norm", layer_norm}, {"softmax", softmax},
      {"rope", rope},           {"kv_write", kv_write}, {"attention", attention}, {"reshape", reshape},
      {"view", view},           {"permute", permute},   {"concat", concat},     {"argmax", argmax},
  };
  auto it = kernels.find(n);
  return it == kernels.end() ? nullptr : it->second;
}

}  // namespace ref

Interpreter::Interpreter(const Module& m, const std::string& function) : m_(m) {
  f_ = const_cast<Module&>(m).find_function(function);
  if (!f_) fail("interpreter: module @{} has no function @{}", m.name, function);
  for (const StateDecl& s : m.states)
    states_[s.name].assign(size_t(row_bytes(s.type.dtype, s.type.num_elements())), 0);
  for (const auto& op : f_->ops)
    if (op->op_name() != "weight" && op->op_name() != "state" && !ref::find_kernel(op->op_name()))
      fail("interpreter: no reference kernel for op '{}'", op->op_name());
}

Interpreter::~Interpreter() = default;

void Interpreter::reset_state() {
  for (auto& [name, buf] : states_) std::fill(buf.begin(), buf.end(), 0);
}

std::vector<float> Interpreter::forward(const std::vector<int32_t>& tokens, const std::vector<int32_t>& pos) {
  if (tokens.size() != pos.size()) fail("interpreter: {} tokens but {} positions", tokens.size(), pos.size());
  RefTensor t, p;
  t.dtype = p.dtype = DType::I32;
  t.shape = p.shape = {int64_t(tokens.size())};
  t.i = tokens;
  p.i = pos;
  std::vector<RefTensor> results = run({std::move(t), std::move(p)});
  return results.at(0).to_f32();
}

std::vector<RefTensor> Interpreter::run(std::vector<RefTensor> args) {
  if (args.size() != f_->args.size())
    fail("interpreter: @{} takes {} arguments, got {}", f_->name, f_->args.size(), args.size());
  // Bind symbolic dims from the arguments' shapes.
  std::map<std::string, int64_t> symbols;
  for (size_t a = 0; a < args.size(); ++a) {
    const TensorType& t = f_->args[a]->type;
    if (int(args[a].shape.size()) != t.rank() || args[a].dtype != t.dtype)
      fail("interpreter: argument %{} must be {}", f_->args[a]->name, t.str());
    for (int d = 0; d < t.rank(); ++d) {
      const Dim& dim = t.dims[d];
      int64_t got = args[a].shape[d];
      if (dim.is_static() && dim.value != got)
        fail("interpreter: argument %{} dim {} is {}, expected {}", f_->args[a]->name, d, got, dim.value);
      if (!dim.is_static()) {
        auto [it, fresh] = symbols.emplace(dim.symbol, got);
        if (!fresh && it->second != got)
          fail("interpreter: symbol {} bound to both {} and {}", dim.symbol, it->second, got);
      }
    }
  }
  std::unordered_map<const Value*, RefTensor> values;
  for (size_t a = 0; a < args.size(); ++a) values[f_->args[a].get()] = std::move(args[a]);

  for (const auto& op : f_->ops) {
    RefTensor out;
    out.dtype = op->type.dtype;
    for (const Dim& d : op->type.dims) {
      if (d.is_static()) {
        out.shape.push_back(d.value);
      } else {
        auto it = symbols.find(d.symbol);
        if (it == symbols.end()) fail("interpreter: symbol {} is not bound by the arguments", d.symbol);
        out.shape.push_back(it->second);
      }
    }
    const std::string& name = op->op_name();
    if (name == "weight") {
      const WeightDecl* w = m_.find_weight(*op->attrs.get_symbol("ref"));
      if (!w->data) fail("interpreter: weight @{} has no data (load the model from GGUF)", w->name);
      out.packed = static_cast<const uint8_t*>(w->data);
      out.packed_dtype = w->type.dtype;
    } else if (name == "state") {
      auto& buf = states_.at(*op->attrs.get_symbol("ref"));
      out.state = buf.data();
      out.packed = buf.data();
      out.packed_dtype = op->type.dtype;
    } else {
      ref::KernelArgs ka{*op, {}, out};
      for (const Value* v : op->operands) ka.in.push_back(&values.at(v));
      ref::find_kernel(name)(ka);
    }
    values[op.get()] = std::move(out);
  }
  std::vector<RefTensor> results;
  for (const Value* r : f_->results) {
    results.push_back(values.at(r));
    if (!results.back().owned.empty()) results.back().packed = results.back().owned.data();  // the copy's own bytes
  }
  return results;
}

}  // namespace nibble
