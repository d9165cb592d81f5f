#include "tools/plan.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <functional>

#include <fmt/format.h>

#include "ir/printer.h"
#include "runtime/cpu/host_features.h"
#include "runtime/cpu/object_loader.h"
#include "runtime/plan/plan_file.h"
#include "runtime/plan/plan_json.h"
#include "support/error.h"
#ifdef NIBBLE_HAVE_VULKAN
#include "codegen/spirv/vulkan_compile.h"
#endif

namespace nibble::tools {

using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

constexpr uint32_t kWeightAlign = 64, kWeightsSectionAlign = 4096;

#if defined(__x86_64__)
constexpr const char* kArch = "x86_64";
#elif defined(__aarch64__)
constexpr const char* kArch = "aarch64";
#else
constexpr const char* kArch = "unknown";
#endif

std::string arch_of(const std::string& triple) { return triple.substr(0, triple.find('-')); }

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// The LLVM features the object code was compiled with ("+avx2,-avx512fp16,..." or the named cpu's).
std::vector<std::string> enabled_features(const cpu::HostCpu& h) {
  std::vector<std::string> out;
  if (h.features_string.empty()) {
    for (const std::string& f : h.feature_set()) out.push_back(f);
    return out;
  }
  size_t i = 0;
  while (i < h.features_string.size()) {
    size_t j = h.features_string.find(',', i);
    if (j == std::string::npos) j = h.features_string.size();
    if (h.features_string[i] == '+') out.push_back(h.features_string.substr(i + 1, j - i - 1));
    i = j + 1;
  }
  return out;
}

const WeightDecl* weight_of(const Module& m, const Op& op) {
  const Value* w = op.operand(1);
  if (!w->def || w->def->op_name() != "weight") return nullptr;
  return m.find_weight(*w->def->attrs.get_symbol("ref"));
}

json cpu_schedule(const Op& op) {
  return {{"rows_per_task", op.attrs.int_or("rows_per_task", 16)},
          {"k_unroll", op.attrs.int_or("k_unroll", 1)},
          {"vector_bits", op.attrs.int_or("vector_bits", 256)},
          {"m_tile", op.attrs.int_or("m_tile", 4)},
          {"path", op.attrs.string_or("path", "gemv")},
          {"gemm_from", op.attrs.int_or("gemm_from", 0)}};
}

#ifdef NIBBLE_HAVE_VULKAN
// The GPU tiles a qmatmul was compiled with (its own from a tuning entry, else the device's).
json vulkan_schedule(const Op& op, const vk::VulkanCompileOptions& co) {
  const VulkanTiles t = vk::qmatmul_tiles(op, co);
  const auto [bm, bn, bk, tm, tn] = t.gemm;
  return {{"gemv", fmt::format("gemv wg {} rows {}", t.gemv_wg, t.gemv_rows)},
          {"batch", t.batch == "gemv" ? fmt::format("multi-token gemv x{}", t.batch_tokens)
                                      : fmt::format("gemm {}x{}x{} t{}x{}", bm, bn, bk, tm, tn)},
          {"gemm_from", co.gemm_from}};
}
#endif

// Each qmatmul of the final IR with its schedule, in program order (the order lowering emits them).
json qmatmul_kernels(const Module& m, uint64_t total_weight_bytes, const std::function<json(const Op&)>& schedule) {
  json out = json::array();
  for (const auto& f : m.functions)
    for (const auto& op : f->ops) {
      if (op->op_name() != "qmatmul") continue;
      const WeightDecl* w = weight_of(m, *op);
      const TensorType& wt = op->operand(1)->type;
      const int64_t N = wt.dims[0].value, K = wt.dims[1].value;
      const uint64_t bytes = uint64_t(row_bytes(wt.dtype, K)) * uint64_t(N);
      const json sched = schedule(*op);
      out.push_back({{"op", fmt::format("qmatmul {} {}x{}", dtype_name(wt.dtype), N, K)},
                     {"weight", w ? w->name : ""},
                     {"format", dtype_name(wt.dtype)},
                     {"act", dtype_name(op->operand(0)->type.dtype)},
                     {"layout", w ? w->attrs.string_or("layout", "rows") : "rows"},
                     {"schedule", sched},
                     {"source", op->attrs.bool_or("tuned", false) ? "tuned" : "heuristic"},
                     {"weight_bytes", bytes},
                     {"weight_share", total_weight_bytes ? double(bytes) / double(total_weight_bytes) : 0.0}});
    }
  return out;
}

json model_json(const Module& m, const LoadedModel& lm, const ExecutorOptions& opts) {
  json j = {{"arch", m.attrs.string_or("arch", "")},       {"n_vocab", m.attrs.int_or("n_vocab", 0)},
            {"n_embd", m.attrs.int_or("n_embd", 0)},       {"n_layer", m.attrs.int_or("n_layer", 0)},
            {"n_head", m.attrs.int_or("n_head", 0)},       {"n_head_kv", m.attrs.int_or("n_head_kv", 0)},
            {"n_ctx", m.attrs.int_or("n_ctx", 0)},         {"max_tokens", opts.max_tokens}};
  if (lm.gguf) j["name"] = lm.gguf->get_string("general.name", "");
  return j;
}

// Every metadata key of the GGUF (tokenizer and hyperparameters) as a tensor-less GGUF image: the
// tokenizer is rebuilt from it with the GGUF reader, exactly as from the model.
std::vector<uint8_t> metadata_image(const gguf::File& f) {
  gguf::Writer w;
  for (const auto& [k, v] : f.metadata())
    if (k != "general.alignment") w.set(k, v);
  return w.to_bytes();
}

std::span<const uint8_t> bytes_of(const void* p, uint64_t n) { return {static_cast<const uint8_t*>(p), size_t(n)}; }

json parse_section_json(const rt::PlanFile& pf, const std::string& name) {
  try {
    return json::parse(pf.section_text(name));
  } catch (const json::exception& e) {
    fail("{}: section '{}' is not valid JSON: {}", pf.path(), name, e.what());
  }
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

}  // namespace

std::string CompileReport::summary() const {
  return fmt::format("{} kernels, {} of {} weight products with tuned schedules; passes {:.0f} ms, codegen {:.0f} ms, "
                     "write {:.0f} ms; {:.1f} MiB",
                     kernels, tuned, products, passes_ms, codegen_ms, write_ms, double(file_bytes) / (1 << 20));
}

CompileReport compile_plan(LoadedModel& lm, const ExecutorOptions& opts, const std::string& source,
                           const std::string& tuning_db, const std::string& out) {
  if (!lm.module) fail("compile: no model");
  CompileReport rep;
  Module& m = *lm.module;
  rt::PlanWriter w;
  json meta = {{"format", "nibble-plan"}, {"source", source}, {"created", utc_now()},
               {"tuning_db", tuning_db.empty() ? json(nullptr) : json(tuning_db)}};
  json plan;
  std::vector<uint64_t> weight_offsets;
  std::vector<std::span<const uint8_t>> weights;  // in plan order
  uint64_t total_weight_bytes = 0;

  std::unique_ptr<CpuCompiled> cpu;
  std::function<json(const Op&)> schedule = cpu_schedule;  // of each weight product, as the plan shows it
#ifdef NIBBLE_HAVE_VULKAN
  vk::VulkanCompiled vkc;
  vk::VulkanCompileOptions co;
#endif
  if (opts.target == "cpu") {
    cpu = compile_cpu(m, opts);
    rep.passes_ms = cpu->passes_ms;
    rep.codegen_ms = cpu->jit_ms;
    const cpu::HostCpu& h = cpu->jit->target();
    meta["target"] = "cpu";
    meta["threads"] = cpu->threads;
    meta["cpu"] = {{"name", h.name}, {"triple", h.triple}, {"vector_bits", h.vector_bits()}};
    for (const rt::WeightBlob& b : cpu->compiled->plan.weights) {
      weights.push_back(bytes_of(b.data, b.bytes));
      total_weight_bytes += b.bytes;
    }
  } else if (is_vulkan_target(opts.target)) {
#ifdef NIBBLE_HAVE_VULKAN
    const int index = vulkan_device_index(opts.target);
    std::vector<vk::DeviceInfo> devices = vk::list_devices();
    if (index >= int(devices.size()))
      fail("compile --target {}: {} Vulkan device(s) here (nibble devices lists them)", opts.target, devices.size());
    auto t0 = Clock::now();
    run_pipeline(m, "vulkan", opts);
    rep.passes_ms = ms_since(t0);
    t0 = Clock::now();
    co = vulkan_options(opts, index).compile;
    co.device = devices[size_t(index)];
    co.max_tokens = opts.max_tokens;
    // The device's tiles, chosen here so the plan records what its kernels were built with.
    if (co.auto_tiles) vk::tiles_for(co.device, co);
    co.auto_tiles = false;
    vkc = vk::compile_for_vulkan(m, co);
    rep.codegen_ms = ms_since(t0);
    const vk::DeviceInfo& d = co.device;
    meta["target"] = "vulkan";
    meta["vulkan"] = {{"device", d.name},        {"type", d.type},          {"vendor_id", d.vendor_id},
                      {"device_id", d.device_id}, {"driver", d.driver_name}, {"driver_version", d.driver_version},
                      {"variant", vkc.features.str()}};
    schedule = [&co](const Op& op) { return vulkan_schedule(op, co); };
    for (const vk::WeightBlob& b : vkc.plan.weights) {
      weights.push_back(bytes_of(b.data, b.bytes));
      total_weight_bytes += b.bytes;
    }
#else
    fail("compile --target {}: this nibble was built without Vulkan", opts.target);
#endif
  } else {
    fail("compile: --target {}: expected cpu, vulkan or vulkan:N (ref runs the IR directly and has no plan)",
         opts.target);
  }
  meta["model"] = model_json(m, lm, opts);
  meta["kernels"] = qmatmul_kernels(m, total_weight_bytes, schedule);
  for (const json& k : meta["kernels"]) rep.tuned += k["source"] == "tuned";
  rep.products = int(meta["kernels"].size());

  // Sections: small ones first, the weights last and page-aligned.
  std::vector<uint64_t> code_offsets;
  w.begin_section("code", 0, 64);
  if (cpu) {
    for (const std::vector<uint8_t>& o : cpu->jit->object_code()) code_offsets.push_back(w.append(o, 64));
  }
#ifdef NIBBLE_HAVE_VULKAN
  else {
    for (const vk::Kernel& k : vkc.plan.kernels) code_offsets.push_back(w.append(bytes_of(k.spirv.data(), k.spirv.size() * 4), 4));
  }
#endif
  // Weight offsets inside the weights section, known before writing it.
  uint64_t at = 0;
  for (const auto& b : weights) {
    at = (at + kWeightAlign - 1) / kWeightAlign * kWeightAlign;
    weight_offsets.push_back(at);
    at += b.size();
  }
  json mem;
  if (cpu) {
    const rt::CpuPlan& p = cpu->compiled->plan;
    plan = rt::cpu_plan_to_json(p, weight_offsets);
    json objects = json::array();
    const auto& objs = cpu->jit->object_code();
    for (size_t i = 0; i < objs.size(); ++i) objects.push_back({{"offset", code_offsets[i]}, {"bytes", objs[i].size()}});
    plan["objects"] = objects;
    plan["requires"] = {{"triple", cpu->jit->target().triple}, {"cpu", cpu->jit->target().name},
                        {"features", enabled_features(cpu->jit->target())}};
    uint64_t states = 0;
    for (const rt::StateBuffer& s : p.states) states += s.bytes;
    mem = {{"weights", total_weight_bytes}, {"arena", p.arena_bytes}, {"kv_cache", states},
           {"scratch_per_thread", p.scratch_bytes}};
    json steps = json::array();
    for (const rt::Step& s : p.steps) steps.push_back({{"label", s.label}, {"kernel", s.kernel}, {"batch_kernel", s.batch_kernel}});
    meta["steps"] = steps;
    rep.kernels = int(cpu->jit->stats().kernels);
  }
#ifdef NIBBLE_HAVE_VULKAN
  else {
    const vk::VulkanPlan& p = vkc.plan;
    plan = rt::vulkan_plan_to_json(p, weight_offsets, code_offsets);
    plan["requires"] = meta["vulkan"];
    uint64_t states = 0;
    for (const vk::StateBuffer& s : p.states) states += s.bytes;
    mem = {{"weights", total_weight_bytes}, {"arena", p.arena_bytes}, {"kv_cache", states}};
    json steps = json::array();
    for (const vk::Dispatch& d : p.dispatches)
      steps.push_back({{"label", d.label}, {"kernel", p.kernels[d.kernel].name},
                       {"batch_kernel", d.batch_from > 0 ? p.kernels[d.batch_kernel].name : ""}});
    meta["steps"] = steps;
    rep.kernels = int(p.kernels.size());
  }
#endif
  meta["memory"] = mem;

  w.begin_section("meta", 0, 8);
  w.append_text(meta.dump(1));
  w.begin_section("plan", 0, 8);
  w.append_text(plan.dump());
  w.begin_section("ir", 0, 8);
  w.append_text(print_module(m));
  if (lm.gguf) {
    w.begin_section("tokenizer", 0, 8);
    w.append_copy(metadata_image(*lm.gguf));
  }
  w.begin_section("weights", rt::kSectionLazyChecksum, kWeightsSectionAlign);
  for (size_t i = 0; i < weights.size(); ++i)
    if (w.append(weights[i], kWeightAlign) != weight_offsets[i]) fail("compile: internal error: weight layout");
  auto t0 = Clock::now();
  w.write(out);
  rep.write_ms = ms_since(t0);
  rep.file_bytes = std::filesystem::file_size(out);
  return rep;
}

bool is_plan_file(const std::string& path) { return rt::PlanFile::has_magic(path); }

namespace {

// What a loaded CPU plan points into, kept alive by its executor.
struct CpuPlanBacking {
  std::unique_ptr<rt::PlanFile> file;
  std::unique_ptr<rt::LoadedCode> code;
  rt::CpuPlan plan;
};

std::unique_ptr<Executor> open_cpu_plan(std::unique_ptr<rt::PlanFile> pf, const json& meta, const json& pj,
                                        const PlanOpenOptions& o) {
  const std::string& path = pf->path();
  auto backing = std::make_shared<CpuPlanBacking>();
  std::vector<std::string> required;
  std::string triple, cpu_name;
  try {
    required = pj.at("requires").at("features").get<std::vector<std::string>>();
    triple = pj.at("requires").at("triple").get<std::string>();
    cpu_name = pj.at("requires").at("cpu").get<std::string>();
  } catch (const json::exception& e) {
    fail("{}: malformed plan section: {}", path, e.what());
  }
  if (arch_of(triple) != kArch)
    fail("{}: compiled for {} ({}), this is {}: recompile it from the GGUF with nibble compile", path, triple, cpu_name,
         kArch);
  const std::set<std::string> host = o.cpu_features_override.empty() ? rt::host_cpu_features() : o.cpu_features_override;
  std::vector<std::string> missing;
  for (const std::string& f : required)
    if (rt::checkable_cpu_features().count(f) && !host.count(f)) missing.push_back(f);
  if (!missing.empty())
    fail("{}: compiled for a CPU ({}) with features this CPU lacks: {}; recompile it from the GGUF on this machine "
         "(nibble compile MODEL.gguf --target cpu)",
         path, cpu_name, join(missing));
  std::span<const uint8_t> code = pf->section("code");
  std::vector<std::span<const uint8_t>> objects;
  try {
    for (const json& ob : pj.at("objects")) {
      const uint64_t off = ob.at("offset").get<uint64_t>(), n = ob.at("bytes").get<uint64_t>();
      if (off > code.size() || n > code.size() - off) fail("code object at {} ({} bytes) outside the code section", off, n);
      objects.push_back(code.subspan(size_t(off), size_t(n)));
    }
  } catch (const json::exception& e) {
    fail("{}: malformed plan section: {}", path, e.what());
  }
  backing->code = rt::LoadedCode::load(objects, path + ": code object");
  backing->plan = rt::cpu_plan_from_json(pj, pf->section("weights"), path);
  int threads = o.threads;
  if (threads <= 0) threads = meta.value("threads", 0);
  ExecutorOptions eo;
  eo.profile = o.profile;
  eo.poison = o.poison;
  rt::LoadedCode* lc = backing->code.get();
  auto resolve = [lc](const std::string& s) { return reinterpret_cast<NibbleKernelFn>(lc->find(s)); };
  const std::string cpu = "compiled for " + cpu_name, origin = "loaded from plan " + path;
  backing->file = std::move(pf);
  const rt::CpuPlan& plan = backing->plan;
  return make_cpu_plan_executor(plan, resolve, threads, eo, backing, cpu, origin);
}

#ifdef NIBBLE_HAVE_VULKAN
struct VulkanPlanBacking {
  std::unique_ptr<rt::PlanFile> file;
  vk::VulkanPlan plan;
};

std::unique_ptr<Executor> open_vulkan_plan(std::unique_ptr<rt::PlanFile> pf, const json& pj, const PlanOpenOptions& o) {
  const std::string& path = pf->path();
  std::string name;
  uint32_t vendor = 0, device = 0;
  try {
    const json& r = pj.at("requires");
    name = r.at("device").get<std::string>();
    vendor = r.at("vendor_id").get<uint32_t>();
    device = r.at("device_id").get<uint32_t>();
  } catch (const json::exception& e) {
    fail("{}: malformed plan section: {}", path, e.what());
  }
  std::vector<vk::DeviceInfo> devices = vk::list_devices();
  auto matches = [&](const vk::DeviceInfo& d) { return d.name == name && d.vendor_id == vendor && d.device_id == device; };
  int index = -1;
  if (o.target.size() > 7) {
    index = vulkan_device_index(o.target);
    if (index >= int(devices.size()) || !matches(devices[size_t(index)]))
      fail("{}: compiled for the Vulkan device '{}', which --target {} is not: recompile it from the GGUF", path, name,
           o.target);
  } else {
    for (const vk::DeviceInfo& d : devices)
      if (matches(d)) {
        index = d.index;
        break;
      }
  }
  if (index < 0) {
    std::vector<std::string> present;
    for (const vk::DeviceInfo& d : devices) present.push_back("'" + d.name + "'");
    fail("{}: compiled for the Vulkan device '{}' (vendor {:#x}, device {:#x}), not present here (present: {}): "
         "recompile it from the GGUF (nibble compile MODEL.gguf --target vulkan)",
         path, name, vendor, device, present.empty() ? std::string("none") : join(present));
  }
  auto backing = std::make_shared<VulkanPlanBacking>();
  backing->plan = rt::vulkan_plan_from_json(pj, pf->section("weights"), pf->section("code"), path);
  backing->file = std::move(pf);
  auto ctx = vk::Context::create({index, o.validation});
  ExecutorOptions eo;
  eo.profile = o.profile;
  eo.poison = o.poison;
  return make_vulkan_plan_executor(ctx, backing->plan, eo, backing);
}
#endif

}  // namespace

OpenedPlan open_plan(const std::string& path, const PlanOpenOptions& o) {
  auto t0 = Clock::now();
  OpenedPlan r;
  std::unique_ptr<rt::PlanFile> pf = rt::PlanFile::open(path, o.verify_weights);
  r.meta = parse_section_json(*pf, "meta");
  const json pj = parse_section_json(*pf, "plan");
  const std::string target = r.meta.value("target", "");
  if (!o.target.empty() && !(o.target == target || (target == "vulkan" && is_vulkan_target(o.target))))
    fail("{}: a plan compiled for --target {}, not {}: compile one for {} from the GGUF", path, target, o.target,
         o.target);
  if (pf->has("tokenizer")) {
    std::span<const uint8_t> t = pf->section("tokenizer");
    auto file = gguf::File::parse(t.data(), t.size(), path + " (tokenizer section)");
    r.tokenizer = Tokenizer::create(vocab_from_gguf(*file));
  }
  if (target == "cpu") {
    r.exec = open_cpu_plan(std::move(pf), r.meta, pj, o);
  } else if (target == "vulkan") {
#ifdef NIBBLE_HAVE_VULKAN
    r.exec = open_vulkan_plan(std::move(pf), pj, o);
#else
    fail("{}: a Vulkan plan, and this nibble was built without Vulkan", path);
#endif
  } else {
    fail("{}: meta section: unknown target '{}' (expected cpu or vulkan)", path, target);
  }
  r.load_ms = ms_since(t0);
  return r;
}

PlanContents read_plan_contents(const std::string& path, bool verify_weights) {
  std::unique_ptr<rt::PlanFile> pf = rt::PlanFile::open(path, verify_weights);
  PlanContents c;
  c.meta = parse_section_json(*pf, "meta");
  c.plan = parse_section_json(*pf, "plan");
  for (const rt::SectionInfo& s : pf->sections()) c.sections.push_back({s.name, s.size});
  c.file_bytes = pf->file_size();
  return c;
}

}  // namespace nibble::tools
