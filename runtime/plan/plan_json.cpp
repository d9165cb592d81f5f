#include "runtime/plan/plan_json.h"

#include <bit>
#include <cstring>

#include "support/error.h"

namespace nibble::rt {

using nlohmann::json;

namespace {

std::span<const uint8_t> slice(std::span<const uint8_t> sec, uint64_t off, uint64_t n, const std::string& what,
                               const std::string& thing) {
  if (off > sec.size() || n > sec.size() - off)
    fail("{}: {} (offset {}, {} bytes) lies outside its section of {} bytes", what, thing, off, n, sec.size());
  return sec.subspan(size_t(off), size_t(n));
}

std::vector<uint32_t> float_bits(const std::vector<float>& v) {
  std::vector<uint32_t> out;
  for (float f : v) out.push_back(std::bit_cast<uint32_t>(f));
  return out;
}
std::vector<float> bits_float(const std::vector<uint32_t>& v) {
  std::vector<float> out;
  for (uint32_t u : v) out.push_back(std::bit_cast<float>(u));
  return out;
}

json buf_json(const BufRef& b) { return json::array({int(b.kind), b.index, b.offset}); }
BufRef buf_from(const json& j) {
  const int k = j.at(0).get<int>();
  if (k < 0 || k > int(BufKind::Null)) fail("buffer kind {}", k);
  return {BufKind(k), j.at(1).get<uint32_t>(), j.at(2).get<uint64_t>()};
}

json binding_json(const vk::Binding& b) { return json::array({int(b.kind), b.index, b.offset, b.bytes}); }
vk::Binding binding_from(const json& j) {
  const int k = j.at(0).get<int>();
  if (k < 0 || k > int(vk::BufKind::Pos)) fail("binding kind {}", k);
  return {vk::BufKind(k), j.at(1).get<uint32_t>(), j.at(2).get<uint64_t>(), j.at(3).get<uint64_t>()};
}
json groups_json(const vk::GroupCount* g) {
  json a = json::array();
  for (int i = 0; i < 3; ++i) a.push_back(json::array({g[i].fixed, g[i].per_token, g[i].div}));
  return a;
}
void groups_from(const json& j, vk::GroupCount* g) {
  for (int i = 0; i < 3; ++i) {
    g[i] = {j.at(i).at(0).get<int64_t>(), j.at(i).at(1).get<int64_t>(), j.at(i).at(2).get<int64_t>()};
    if (g[i].div <= 0) fail("workgroup divisor {}", g[i].div);
  }
}

// Runs `body`, turning JSON errors into nibble::Error naming the plan.
template <class F>
auto guarded(const std::string& what, F body) {
  try {
    return body();
  } catch (const json::exception& e) {
    fail("{}: malformed plan section: {}", what, e.what());
  } catch (const Error& e) {
    fail("{}: malformed plan section: {}", what, e.what());
  }
}

}  // namespace

json cpu_plan_to_json(const CpuPlan& p, const std::vector<uint64_t>& weight_offsets) {
  json steps = json::array();
  for (const Step& s : p.steps) {
    json bufs = json::array();
    for (const BufRef& b : s.bufs) bufs.push_back(buf_json(b));
    steps.push_back({{"kernel", s.kernel}, {"batch_kernel", s.batch_kernel}, {"batch_from", s.batch_from_tokens},
                     {"bufs", bufs}, {"ints", s.ints}, {"floats", float_bits(s.floats)}, {"tasks", s.tasks},
                     {"tasks_per_token", s.tasks_per_token}, {"label", s.label}});
  }
  json weights = json::array();
  for (size_t i = 0; i < p.weights.size(); ++i)
    weights.push_back({{"name", p.weights[i].name}, {"offset", weight_offsets.at(i)}, {"bytes", p.weights[i].bytes}});
  json states = json::array();
  for (const StateBuffer& s : p.states) states.push_back({{"name", s.name}, {"bytes", s.bytes}});
  return {{"steps", steps},           {"weights", weights},         {"states", states},
          {"arena_bytes", p.arena_bytes}, {"scratch_bytes", p.scratch_bytes}, {"max_tokens", p.max_tokens},
          {"n_vocab", p.n_vocab},     {"n_ctx", p.n_ctx},           {"logits", buf_json(p.logits)}};
}

CpuPlan cpu_plan_from_json(const json& j, std::span<const uint8_t> wsec, const std::string& what) {
  return guarded(what, [&] {
    CpuPlan p;
    for (const json& s : j.at("steps")) {
      Step st;
      st.kernel = s.at("kernel").get<std::string>();
      st.batch_kernel = s.at("batch_kernel").get<std::string>();
      st.batch_from_tokens = s.at("batch_from").get<int64_t>();
      for (const json& b : s.at("bufs")) st.bufs.push_back(buf_from(b));
      st.ints = s.at("ints").get<std::vector<int64_t>>();
      st.floats = bits_float(s.at("floats").get<std::vector<uint32_t>>());
      st.tasks = s.at("tasks").get<int64_t>();
      st.tasks_per_token = s.at("tasks_per_token").get<int64_t>();
      st.label = s.at("label").get<std::string>();
      p.steps.push_back(std::move(st));
    }
    for (const json& w : j.at("weights")) {
      WeightBlob b;
      b.name = w.at("name").get<std::string>();
      b.bytes = w.at("bytes").get<uint64_t>();
      b.data = slice(wsec, w.at("offset").get<uint64_t>(), b.bytes, what, "weight " + b.name).data();
      p.weights.push_back(std::move(b));
    }
    for (const json& s : j.at("states")) p.states.push_back({s.at("name").get<std::string>(), s.at("bytes").get<uint64_t>()});
    p.arena_bytes = j.at("arena_bytes").get<uint64_t>();
    p.scratch_bytes = j.at("scratch_bytes").get<uint64_t>();
    p.max_tokens = j.at("max_tokens").get<int64_t>();
    p.n_vocab = j.at("n_vocab").get<int64_t>();
    p.n_ctx = j.at("n_ctx").get<int64_t>();
    p.logits = buf_from(j.at("logits"));
    return p;
  });
}

json vulkan_plan_to_json(const vk::VulkanPlan& p, const std::vector<uint64_t>& weight_offsets,
                         const std::vector<uint64_t>& spirv_offsets) {
  json kernels = json::array();
  for (size_t i = 0; i < p.kernels.size(); ++i) {
    const vk::Kernel& k = p.kernels[i];
    kernels.push_back({{"name", k.name}, {"spirv_offset", spirv_offsets.at(i)}, {"spirv_words", k.spirv.size()},
                       {"spec", k.spec}, {"n_bindings", k.n_bindings}, {"features", k.features},
                       {"shared_bytes", k.shared_bytes}});
  }
  json dispatches = json::array();
  for (const vk::Dispatch& d : p.dispatches) {
    json b = json::array();
    for (const vk::Binding& x : d.bindings) b.push_back(binding_json(x));
    const vk::Slice& s = d.slice;
    dispatches.push_back({{"kernel", d.kernel}, {"batch_kernel", d.batch_kernel}, {"batch_from", d.batch_from},
                          {"bindings", b}, {"params", d.params}, {"groups", groups_json(d.groups)},
                          {"batch_groups", groups_json(d.batch_groups)},
                          {"slice", json::array({s.binding, s.row_bytes, s.rows, s.rows_per_group,
                                                 s.batch_rows_per_group, s.row0_param, s.nrows_param})},
                          {"label", d.label}, {"bytes_fixed", d.bytes_fixed}, {"bytes_per_token", d.bytes_per_token}});
  }
  json weights = json::array();
  for (size_t i = 0; i < p.weights.size(); ++i)
    weights.push_back({{"name", p.weights[i].name}, {"offset", weight_offsets.at(i)}, {"bytes", p.weights[i].bytes}});
  json states = json::array();
  for (const vk::StateBuffer& s : p.states) states.push_back({{"name", s.name}, {"bytes", s.bytes}});
  json outputs = json::array();
  for (const vk::Output& o : p.outputs)
    outputs.push_back({{"binding", binding_json(o.binding)}, {"fixed", o.fixed_elems}, {"per_token", o.per_token_elems},
                       {"i32", o.is_i32}});
  return {{"kernels", kernels},   {"dispatches", dispatches},   {"weights", weights},   {"states", states},
          {"outputs", outputs},   {"arena_bytes", p.arena_bytes}, {"max_tokens", p.max_tokens},
          {"n_vocab", p.n_vocab}, {"n_ctx", p.n_ctx},           {"features", p.features}};
}

vk::VulkanPlan vulkan_plan_from_json(const json& j, std::span<const uint8_t> wsec, std::span<const uint8_t> code,
                                     const std::string& what) {
  return guarded(what, [&] {
    vk::VulkanPlan p;
    for (const json& k : j.at("kernels")) {
      vk::Kernel kr;
      kr.name = k.at("name").get<std::string>();
      const uint64_t words = k.at("spirv_words").get<uint64_t>();
      if (words > code.size() / 4) fail("kernel {}: {} SPIR-V words", kr.name, words);
      std::span<const uint8_t> b = slice(code, k.at("spirv_offset").get<uint64_t>(), words * 4, what, "SPIR-V of " + kr.name);
      kr.spirv.resize(size_t(words));
      std::memcpy(kr.spirv.data(), b.data(), b.size());
      kr.spec = k.at("spec").get<std::vector<uint32_t>>();
      kr.n_bindings = k.at("n_bindings").get<uint32_t>();
      kr.features = k.at("features").get<uint32_t>();
      kr.shared_bytes = k.at("shared_bytes").get<uint32_t>();
      p.kernels.push_back(std::move(kr));
    }
    for (const json& d : j.at("dispatches")) {
      vk::Dispatch ds;
      ds.kernel = d.at("kernel").get<uint32_t>();
      ds.batch_kernel = d.at("batch_kernel").get<uint32_t>();
      if (ds.kernel >= p.kernels.size() || ds.batch_kernel >= std::max<size_t>(p.kernels.size(), 1))
        fail("dispatch names kernel {} of {}", ds.kernel, p.kernels.size());
      ds.batch_from = d.at("batch_from").get<int64_t>();
      for (const json& b : d.at("bindings")) ds.bindings.push_back(binding_from(b));
      if (ds.bindings.size() > vk::kMaxBindings) fail("dispatch with {} bindings", ds.bindings.size());
      ds.params = d.at("params").get<std::vector<uint32_t>>();
      if (ds.params.size() > vk::kMaxParams) fail("dispatch with {} parameter words", ds.params.size());
      groups_from(d.at("groups"), ds.groups);
      groups_from(d.at("batch_groups"), ds.batch_groups);
      const json& s = d.at("slice");
      ds.slice = {s.at(0).get<int32_t>(), s.at(1).get<uint64_t>(), s.at(2).get<int64_t>(), s.at(3).get<int64_t>(),
                  s.at(4).get<int64_t>(), s.at(5).get<uint32_t>(), s.at(6).get<uint32_t>()};
      ds.label = d.at("label").get<std::string>();
      ds.bytes_fixed = d.at("bytes_fixed").get<double>();
      ds.bytes_per_token = d.at("bytes_per_token").get<double>();
      p.dispatches.push_back(std::move(ds));
    }
    for (const json& w : j.at("weights")) {
      vk::WeightBlob b;
      b.name = w.at("name").get<std::string>();
      b.bytes = w.at("bytes").get<uint64_t>();
      b.data = slice(wsec, w.at("offset").get<uint64_t>(), b.bytes, what, "weight " + b.name).data();
      p.weights.push_back(std::move(b));
    }
    for (const json& s : j.at("states")) p.states.push_back({s.at("name").get<std::string>(), s.at("bytes").get<uint64_t>()});
    for (const json& o : j.at("outputs"))
      p.outputs.push_back({binding_from(o.at("binding")), o.at("fixed").get<int64_t>(), o.at("per_token").get<int64_t>(),
                           o.at("i32").get<bool>()});
    p.arena_bytes = j.at("arena_bytes").get<uint64_t>();
    p.max_tokens = j.at("max_tokens").get<int64_t>();
    p.n_vocab = j.at("n_vocab").get<int64_t>();
    p.n_ctx = j.at("n_ctx").get<int64_t>();
    p.features = j.at("features").get<uint32_t>();
    return p;
  });
}

}  // namespace nibble::rt
