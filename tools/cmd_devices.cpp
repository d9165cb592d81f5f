// nibble devices: the CPU and every Vulkan device, with the features the compilers use.
#include <set>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "codegen/cpu/cpu_jit.h"
#include "tools/commands.h"
#ifdef NIBBLE_HAVE_VULKAN
#include "runtime/vulkan/device.h"
#endif

namespace nibble::tools {

namespace {

void run_devices(bool json) {
  const cpu::HostCpu h = cpu::detect_host();
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  const std::set<std::string> feature_set = h.feature_set();
  const std::vector<std::string> features(feature_set.begin(), feature_set.end());
  nlohmann::json j;
  j["cpu"] = {{"target", "cpu"},          {"name", h.name},         {"triple", h.triple},
              {"threads", threads},       {"vector_bits", h.vector_bits()}, {"features", features}};
  j["vulkan"] = nlohmann::json::array();
  std::vector<std::string> lines;
#ifdef NIBBLE_HAVE_VULKAN
  for (const vk::DeviceInfo& d : vk::list_devices()) {
    j["vulkan"].push_back({{"target", fmt::format("vulkan:{}", d.index)},
                           {"name", d.name},
                           {"type", d.type},
                           {"driver", d.driver_name},
                           {"driver_info", d.driver_info},
                           {"subgroup_size", d.subgroup_size},
                           {"subgroup_arithmetic", d.subgroup_arithmetic},
                           {"storage8", d.storage8},
                           {"storage16", d.storage16},
                           {"float16", d.float16},
                           {"int_dot", d.int_dot},
                           {"max_storage_range", d.max_storage_range},
                           {"device_local_bytes", d.device_local_bytes}});
    lines.push_back(fmt::format("vulkan:{}  {}\n           {}", d.index, d.summary(), d.features()));
  }
#endif
  if (json) {
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("cpu       {} ({}), {} hardware threads, {}-bit vectors\n           features: {}\n", h.name, h.triple,
             threads, h.vector_bits(), fmt::join(features, " "));
  for (const std::string& l : lines) fmt::print("{}\n", l);
#ifdef NIBBLE_HAVE_VULKAN
  if (lines.empty()) fmt::print("vulkan    no device (no Vulkan loader, driver or device found)\n");
#else
  fmt::print("vulkan    not built in (nibble was built without Vulkan)\n");
#endif
}

}  // namespace

void add_devices_command(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  CLI::App* c = app.add_subcommand("devices", "List the CPU and the Vulkan devices, with the features the compilers use");
  c->add_flag("--json", *json, "machine-readable output");
  c->callback([json] { run_devices(*json); });
}

}  // namespace nibble::tools
