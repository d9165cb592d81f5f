#include "tools/tuning_db.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "codegen/cpu/cpu_jit.h"
#include "support/error.h"
#include "tools/executor.h"
#ifdef NIBBLE_HAVE_VULKAN
#include "runtime/vulkan/device.h"
#endif

namespace nibble::tools {

namespace {

using json = nlohmann::ordered_json;

constexpr int kVersion = 1;

json schedule_json(const TunedSchedule& s) {
  return {{"rows_per_task", s.rows_per_task}, {"k_unroll", s.k_unroll}, {"m_tile", s.m_tile}};
}

json schedule_json(const VulkanTiles& t) {
  json j = {{"gemv_wg", t.gemv_wg}, {"gemv_rows", t.gemv_rows}, {"batch", t.batch}};
  if (t.batch == "gemm")
    j["gemm"] = t.gemm;
  else
    j["batch_tokens"] = t.batch_tokens;
  return j;
}

json schedule_json(const KernelSchedule& s) {
  return std::visit([](const auto& x) { return schedule_json(x); }, s);
}

// The schedule kind is the device's target's: a vulkan device's entries hold VulkanTiles.
KernelSchedule schedule_from(const json& j, const std::string& target) {
  if (target == "vulkan") {
    VulkanTiles t;
    t.gemv_wg = j.at("gemv_wg").get<int64_t>();
    t.gemv_rows = j.at("gemv_rows").get<int64_t>();
    t.batch = j.at("batch").get<std::string>();
    if (t.batch == "gemm")
      t.gemm = j.at("gemm").get<std::array<int64_t, 5>>();
    else
      t.batch_tokens = j.at("batch_tokens").get<int64_t>();
    return t;
  }
  TunedSchedule s;
  s.rows_per_task = j.at("rows_per_task").get<int64_t>();
  s.k_unroll = j.at("k_unroll").get<int64_t>();
  s.m_tile = j.at("m_tile").get<int64_t>();
  return s;
}

json entry_json(const TuningEntry& e) {
  return {{"best", schedule_json(e.best)},
          {"best_us", e.best_us},
          {"default", schedule_json(e.heuristic)},
          {"default_us", e.default_us},
          {"speedup", e.speedup()},
          {"decode_us", {{"best", e.best_decode_us}, {"default", e.default_decode_us}}},
          {"prefill_us", {{"best", e.best_prefill_us}, {"default", e.default_prefill_us}}},
          {"prefill_tokens", e.prefill_tokens},
          {"candidates", e.candidates},
          {"rejected", e.rejected},
          {"measured", e.measured}};
}

TuningEntry entry_from(const json& j, const std::string& target) {
  TuningEntry e;
  e.best = schedule_from(j.at("best"), target);
  e.heuristic = schedule_from(j.at("default"), target);
  e.best_us = j.at("best_us").get<double>();
  e.default_us = j.at("default_us").get<double>();
  if (j.contains("decode_us")) {
    e.best_decode_us = j["decode_us"].value("best", 0.0);
    e.default_decode_us = j["decode_us"].value("default", 0.0);
  }
  if (j.contains("prefill_us")) {
    e.best_prefill_us = j["prefill_us"].value("best", 0.0);
    e.default_prefill_us = j["prefill_us"].value("default", 0.0);
  }
  e.prefill_tokens = j.value("prefill_tokens", 0);
  e.candidates = j.value("candidates", 0);
  e.rejected = j.value("rejected", 0);
  e.measured = j.value("measured", std::string());
  return e;
}

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const std::string& x : s) out += (out.empty() ? "" : ",") + x;
  return out;
}

}  // namespace

TuningDb TuningDb::load(const std::string& path) {
  TuningDb db;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (std::filesystem::exists(path)) fail("{}: cannot read the tuning database", path);
    return db;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::parse_error& e) {
    fail("{}: not a valid tuning database (JSON error at byte {}): {}", path, e.byte, e.what());
  }
  std::string where = "the top level";
  try {
    if (!j.is_object() || j.value("format", std::string()) != "nibble-tuning")
      fail("{}: not a tuning database (expected an object with \"format\": \"nibble-tuning\")", path);
    if (int v = j.value("version", 0); v != kVersion)
      fail("{}: tuning database version {} (this nibble reads version {})", path, v, kVersion);
    for (const auto& [fp, dj] : j.at("devices").items()) {
      where = fmt::format("devices[\"{}\"]", fp);
      TuningDevice d;
      d.target = dj.value("target", std::string("cpu"));
      if (d.target != "cpu" && d.target != "vulkan")
        fail("{}: {}: target '{}' (expected cpu or vulkan)", path, where, d.target);
      d.about_json = dj.contains("about") ? dj["about"].dump() : "{}";
      for (const auto& [sig, ej] : dj.at("kernels").items()) {
        where = fmt::format("devices[\"{}\"].kernels[\"{}\"]", fp, sig);
        TuningEntry e = entry_from(ej, d.target);
        if (std::string why = validate_tuned(e.best); !why.empty()) fail("{}: {}: best: {}", path, where, why);
        d.kernels[sig] = e;
      }
      db.devices[fp] = std::move(d);
    }
  } catch (const json::exception& e) {
    fail("{}: malformed tuning database at {}: {}", path, where, e.what());
  }
  return db;
}

void TuningDb::save(const std::string& path) const {
  json devs = json::object();
  for (const auto& [fp, d] : devices) {
    json kernels = json::object();
    for (const auto& [sig, e] : d.kernels) {
      // What load reads back: the device's target decides the schedule kind.
      if ((d.target == "vulkan") != std::holds_alternative<VulkanTiles>(e.best))
        fail("{}: device '{}' (target {}) holds a schedule of another target for '{}'", path, fp, d.target, sig);
      kernels[sig] = entry_json(e);
    }
    json about = json::parse(d.about_json.empty() ? "{}" : d.about_json, nullptr, false);
    devs[fp] = {{"target", d.target}, {"about", about.is_discarded() ? json::object() : about}, {"kernels", kernels}};
  }
  json j = {{"format", "nibble-tuning"}, {"version", kVersion}, {"devices", devs}};
  namespace fs = std::filesystem;
  const fs::path p(path);
  if (p.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
  }
  const std::string tmp = path + fmt::format(".tmp{}", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out || !(out << j.dump(2) << "\n")) fail("{}: cannot write the tuning database", tmp);
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  if (ec) {
    fs::remove(tmp, ec);
    fail("{}: cannot write the tuning database", path);
  }
}

const TuningEntry* TuningDb::find(const std::string& device, const std::string& signature) const {
  auto d = devices.find(device);
  if (d == devices.end()) return nullptr;
  auto e = d->second.kernels.find(signature);
  return e == d->second.kernels.end() ? nullptr : &e->second;
}

std::vector<std::string> TuningDb::missing(const std::string& device, const std::vector<std::string>& signatures) const {
  std::vector<std::string> out;
  for (const std::string& s : signatures)
    if (!find(device, s) && std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  return out;
}

std::shared_ptr<const TuningTable> TuningDb::table_for(const std::string& device) const {
  auto d = devices.find(device);
  if (d == devices.end() || d->second.kernels.empty()) return nullptr;
  auto t = std::make_shared<TuningTable>();
  t->device = device;
  for (const auto& [sig, e] : d->second.kernels) t->by_signature[sig] = e.best;
  return t;
}

DeviceFingerprint device_fingerprint(const std::string& target) {
  DeviceFingerprint f;
  if (target == "cpu") {
    const cpu::HostCpu h = cpu::detect_host();
    f.target = "cpu";
    f.key = fmt::format("cpu {} [{}]", h.name, join(h.feature_set()));
    f.about_json = json{{"cpu", h.name}, {"triple", h.triple}, {"vector_bits", h.vector_bits()},
                        {"features", h.features_string}}
                       .dump();
    return f;
  }
  if (is_vulkan_target(target)) {
    const int index = vulkan_device_index(target);
#ifdef NIBBLE_HAVE_VULKAN
    std::vector<vk::DeviceInfo> devs = vk::list_devices();
    if (index >= int(devs.size()))
      fail("--target {}: {} Vulkan device(s) here (nibble devices lists them)", target, devs.size());
    const vk::DeviceInfo& d = devs[size_t(index)];
    f.target = "vulkan";
    f.key = fmt::format("vulkan {} [{:04x}:{:04x}] {} {}", d.name, d.vendor_id, d.device_id, d.driver_name,
                        d.driver_version);
    f.about_json = json{{"device", d.name},           {"type", d.type},
                        {"vendor_id", d.vendor_id},   {"device_id", d.device_id},
                        {"driver", d.driver_name},    {"driver_info", d.driver_info},
                        {"driver_version", d.driver_version}}
                       .dump();
    return f;
#else
    (void)index;
    fail("--target {}: this nibble was built without Vulkan", target);
#endif
  }
  fail("tuning: no device fingerprint for target '{}' (expected cpu, vulkan or vulkan:N)", target);
}

std::string default_tuning_db_path() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/nibble/tuning.json";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/nibble/tuning.json";
  return "tuning.json";
}

std::shared_ptr<const TuningTable> load_tuning_table(const std::string& db_path, const std::string& target) {
  if (db_path.empty() || target == "ref") return nullptr;
  TuningDb db = TuningDb::load(db_path);
  if (db.devices.empty()) return nullptr;
  return db.table_for(device_fingerprint(target).key);
}

}  // namespace nibble::tools
