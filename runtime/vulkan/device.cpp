#include "runtime/vulkan/device.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "runtime/vulkan/plan.h"
#include "support/error.h"

namespace nibble::vk {

const char* result_name(VkResult r) {
  switch (r) {
#define NIBBLE_VK_CASE(x) \
  case x:                 \
    return #x;
    NIBBLE_VK_CASE(VK_SUCCESS)
    NIBBLE_VK_CASE(VK_NOT_READY)
    NIBBLE_VK_CASE(VK_TIMEOUT)
    NIBBLE_VK_CASE(VK_INCOMPLETE)
    NIBBLE_VK_CASE(VK_ERROR_OUT_OF_HOST_MEMORY)
    NIBBLE_VK_CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    NIBBLE_VK_CASE(VK_ERROR_INITIALIZATION_FAILED)
    NIBBLE_VK_CASE(VK_ERROR_DEVICE_LOST)
    NIBBLE_VK_CASE(VK_ERROR_MEMORY_MAP_FAILED)
    NIBBLE_VK_CASE(VK_ERROR_LAYER_NOT_PRESENT)
    NIBBLE_VK_CASE(VK_ERROR_EXTENSION_NOT_PRESENT)
    NIBBLE_VK_CASE(VK_ERROR_FEATURE_NOT_PRESENT)
    NIBBLE_VK_CASE(VK_ERROR_INCOMPATIBLE_DRIVER)
    NIBBLE_VK_CASE(VK_ERROR_TOO_MANY_OBJECTS)
    NIBBLE_VK_CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
    NIBBLE_VK_CASE(VK_ERROR_FRAGMENTED_POOL)
    NIBBLE_VK_CASE(VK_ERROR_OUT_OF_POOL_MEMORY)
    NIBBLE_VK_CASE(VK_ERROR_INVALID_SHADER_NV)
    NIBBLE_VK_CASE(VK_PIPELINE_COMPILE_REQUIRED)
#undef NIBBLE_VK_CASE
    default:
      return "VK_ERROR_UNKNOWN";
  }
}

void throw_vk(VkResult r, const std::string& what) {
  std::string hint;
  if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
    hint = " (out of memory: use a smaller model, fewer tokens per call or another device)";
  else if (r == VK_ERROR_DEVICE_LOST)
    hint = " (the device was lost: a driver reset or a kernel fault; the model must be reloaded)";
  fail("vulkan: {} failed: {}{}", what, result_name(r), hint);
}

namespace {

std::string version_str(uint32_t v) {
  return fmt::format("{}.{}.{}", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), VK_API_VERSION_PATCH(v));
}

std::string driver_version_str(const DeviceInfo& d) {
  if (d.vendor_id == 0x10DE)  // NVIDIA packs 10.8.8.6 bits
    return fmt::format("{}.{}.{}", d.driver_version >> 22, (d.driver_version >> 14) & 0xFF,
                       (d.driver_version >> 6) & 0xFF);
  return version_str(d.driver_version);
}

const char* type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
  }
}

bool has_extension(VkPhysicalDevice pd, const char* name) {
  uint32_t n = 0;
  vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr);
  std::vector<VkExtensionProperties> ext(n);
  vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, ext.data());
  for (const auto& e : ext)
    if (std::strcmp(e.extensionName, name) == 0) return true;
  return false;
}

// Queries everything DeviceInfo holds. Needs a Vulkan 1.1+ instance.
DeviceInfo query_device(VkPhysicalDevice pd, int index) {
  DeviceInfo d;
  d.index = index;
  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties(pd, &props);
  d.name = props.deviceName;
  d.type = type_name(props.deviceType);
  d.api_version = props.apiVersion;
  d.driver_version = props.driverVersion;
  d.vendor_id = props.vendorID;
  d.device_id = props.deviceID;
  d.timestamps = props.limits.timestampComputeAndGraphics && props.limits.timestampPeriod > 0;
  d.timestamp_period_ns = props.limits.timestampPeriod;
  d.max_shared_bytes = props.limits.maxComputeSharedMemorySize;
  d.max_workgroup_invocations = props.limits.maxComputeWorkGroupInvocations;
  d.max_workgroup_size_x = props.limits.maxComputeWorkGroupSize[0];
  for (int i = 0; i < 3; ++i) d.max_group_count[i] = props.limits.maxComputeWorkGroupCount[i];
  d.max_storage_range = props.limits.maxStorageBufferRange;
  d.min_storage_align = props.limits.minStorageBufferOffsetAlignment;
  d.max_push_bytes = props.limits.maxPushConstantsSize;
  if (props.apiVersion < VK_API_VERSION_1_1) return d;
  const bool v12 = props.apiVersion >= VK_API_VERSION_1_2, v13 = props.apiVersion >= VK_API_VERSION_1_3;

  VkPhysicalDeviceSubgroupProperties sg{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceSubgroupSizeControlProperties sgc{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
  VkPhysicalDeviceMaintenance3Properties m3{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
  VkPhysicalDeviceDriverProperties drv{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceShaderIntegerDotProductProperties dotp{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES};
  VkPhysicalDeviceMaintenance4Properties m4{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
  const bool has_sgc = v13 || has_extension(pd, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
  const bool has_dot = v13 || has_extension(pd, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
  const bool has_m4 = v13 || has_extension(pd, VK_KHR_MAINTENANCE_4_EXTENSION_NAME);
  VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  void** next = &p2.pNext;
  auto chain = [&next](auto& s) {
    *next = &s;
    next = &s.pNext;
  };
  chain(sg);
  chain(m3);
  if (has_sgc) chain(sgc);
  if (v12) chain(drv);
  if (has_dot) chain(dotp);
  if (has_m4) chain(m4);
  vkGetPhysicalDeviceProperties2(pd, &p2);
  d.subgroup_size = sg.subgroupSize;
  d.min_subgroup_size = has_sgc ? sgc.minSubgroupSize : sg.subgroupSize;
  d.max_subgroup_size = has_sgc ? sgc.maxSubgroupSize : sg.subgroupSize;
  if (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) {
    auto op = [&](VkSubgroupFeatureFlagBits b) { return (sg.supportedOperations & b) != 0; };
    d.subgroup_basic = op(VK_SUBGROUP_FEATURE_BASIC_BIT);
    d.subgroup_vote = op(VK_SUBGROUP_FEATURE_VOTE_BIT);
    d.subgroup_arithmetic = op(VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    d.subgroup_ballot = op(VK_SUBGROUP_FEATURE_BALLOT_BIT);
    d.subgroup_shuffle = op(VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
    d.subgroup_shuffle_relative = op(VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT);
    d.subgroup_clustered = op(VK_SUBGROUP_FEATURE_CLUSTERED_BIT);
    d.subgroup_quad = op(VK_SUBGROUP_FEATURE_QUAD_BIT);
  }
  d.max_alloc_bytes = m3.maxMemoryAllocationSize;
  d.max_buffer_bytes = has_m4 ? m4.maxBufferSize : m3.maxMemoryAllocationSize;
  if (v12) {
    d.driver_name = drv.driverName;
    d.driver_info = drv.driverInfo;
  }
  d.int_dot_accelerated = has_dot && dotp.integerDotProduct4x8BitPackedSignedAccelerated;

  VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceShaderIntegerDotProductFeatures fdot{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  if (v12) {
    f2.pNext = &f11;
    f11.pNext = &f12;
    if (has_dot) f12.pNext = &fdot;
  }
  vkGetPhysicalDeviceFeatures2(pd, &f2);
  d.int16 = f2.features.shaderInt16;
  d.int64 = f2.features.shaderInt64;
  if (v12) {
    d.storage16 = f11.storageBuffer16BitAccess;
    d.storage8 = f12.storageBuffer8BitAccess;
    d.float16 = f12.shaderFloat16;
    d.int8 = f12.shaderInt8;
    d.int_dot = has_dot && fdot.shaderIntegerDotProduct;
  }
  if (!d.int_dot) d.int_dot_accelerated = false;

  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties(pd, &mem);
  for (uint32_t h = 0; h < mem.memoryHeapCount; ++h)
    if (mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
      d.device_local_bytes = std::max<uint64_t>(d.device_local_bytes, mem.memoryHeaps[h].size);
  for (uint32_t t = 0; t < mem.memoryTypeCount; ++t) {
    VkMemoryPropertyFlags f = mem.memoryTypes[t].propertyFlags;
    if ((f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) && (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)) d.unified_memory = true;
  }
  return d;
}

VkInstance create_instance(bool validation, uint32_t* api_out) {
  uint32_t api = VK_API_VERSION_1_0;
  auto enumerate_version =
      reinterpret_cast<PFN_vkEnumerateInstanceVersion>(vkGetInstanceProcAddr(nullptr, "vkEnumerateInstanceVersion"));
  if (enumerate_version) enumerate_version(&api);
  if (api < VK_API_VERSION_1_2) {
    if (api_out) *api_out = api;
    return VK_NULL_HANDLE;
  }
  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "nibble";
  app.pEngineName = "nibble";
  app.apiVersion = std::min<uint32_t>(api, VK_API_VERSION_1_3);
  std::vector<const char*> layers, exts;
  if (validation) {
    layers.push_back("VK_LAYER_KHRONOS_validation");
    exts.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  }
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pApplicationInfo = &app;
  ci.enabledLayerCount = uint32_t(layers.size());
  ci.ppEnabledLayerNames = layers.data();
  ci.enabledExtensionCount = uint32_t(exts.size());
  ci.ppEnabledExtensionNames = exts.data();
  VkInstance inst = VK_NULL_HANDLE;
  VkResult r = vkCreateInstance(&ci, nullptr, &inst);
  if (api_out) *api_out = app.apiVersion;
  if (r == VK_ERROR_LAYER_NOT_PRESENT)
    fail("vulkan: validation was requested but VK_LAYER_KHRONOS_validation is not installed "
         "(package vulkan-validationlayers)");
  if (r != VK_SUCCESS) return VK_NULL_HANDLE;
  return inst;
}

std::vector<VkPhysicalDevice> physical_devices(VkInstance inst) {
  uint32_t n = 0;
  if (vkEnumeratePhysicalDevices(inst, &n, nullptr) != VK_SUCCESS) return {};
  std::vector<VkPhysicalDevice> pds(n);
  if (n && vkEnumeratePhysicalDevices(inst, &n, pds.data()) != VK_SUCCESS && n == 0) return {};
  pds.resize(n);
  return pds;
}

VKAPI_ATTR VkBool32 VKAPI_CALL debug_callback(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                              VkDebugUtilsMessageTypeFlagsEXT, const VkDebugUtilsMessengerCallbackDataEXT* data,
                                              void* user) {
  const char* sev = severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning";
  static_cast<Context*>(user)->add_message(
      fmt::format("{}: {}", sev, data && data->pMessage ? data->pMessage : "(no message)"));
  return VK_FALSE;
}

}  // namespace

std::string DeviceInfo::summary() const {
  return fmt::format("#{}: {} ({}, driver {} {}, Vulkan {})", index, name, type,
                     driver_name.empty() ? "?" : driver_name, driver_version_str(*this), version_str(api_version));
}

std::string DeviceInfo::features() const {
  std::vector<std::string> ops;
  if (subgroup_basic) ops.push_back("basic");
  if (subgroup_vote) ops.push_back("vote");
  if (subgroup_arithmetic) ops.push_back("arithmetic");
  if (subgroup_ballot) ops.push_back("ballot");
  if (subgroup_shuffle) ops.push_back("shuffle");
  if (subgroup_shuffle_relative) ops.push_back("shuffle-relative");
  if (subgroup_clustered) ops.push_back("clustered");
  if (subgroup_quad) ops.push_back("quad");
  auto yn = [](bool b) { return b ? "yes" : "no"; };
  return fmt::format(
      "subgroup {} ({}..{}) ops [{}]; 16-bit storage {}; 8-bit storage {}; shaderFloat16 {}; shaderInt8 {}; "
      "integer dot product {}{}; shared {} KiB; max storage range {} MiB; device-local {} MiB{}",
      subgroup_size, min_subgroup_size, max_subgroup_size, fmt::join(ops, ", "), yn(storage16), yn(storage8),
      yn(float16), yn(int8), yn(int_dot), int_dot ? (int_dot_accelerated ? " (accelerated)" : " (not accelerated)") : "",
      max_shared_bytes / 1024, max_storage_range >> 20, device_local_bytes >> 20,
      unified_memory ? " (host-visible)" : "");
}

std::vector<DeviceInfo> list_devices() {
  std::vector<DeviceInfo> out;
  VkInstance inst = create_instance(false, nullptr);
  if (!inst) return out;
  std::vector<VkPhysicalDevice> pds = physical_devices(inst);
  for (size_t i = 0; i < pds.size(); ++i) out.push_back(query_device(pds[i], int(i)));
  vkDestroyInstance(inst, nullptr);
  return out;
}

std::shared_ptr<Context> Context::create(const ContextOptions& o) {
  std::shared_ptr<Context> c(new Context());
  uint32_t api = 0;
  c->instance_ = create_instance(o.validation, &api);
  if (!c->instance_) {
    if (api && api < VK_API_VERSION_1_2)
      fail("vulkan: the Vulkan loader supports API {} but nibble needs 1.2", version_str(api));
    fail("vulkan: no Vulkan driver found (cannot create an instance; is mesa-vulkan-drivers or a GPU driver installed?)");
  }
  c->validation_ = o.validation;
  if (o.validation) {
    auto create_messenger = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(c->instance_, "vkCreateDebugUtilsMessengerEXT"));
    if (!create_messenger) fail("vulkan: VK_EXT_debug_utils is missing: cannot collect validation messages");
    VkDebugUtilsMessengerCreateInfoEXT mi{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
    mi.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    mi.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT;
    mi.pfnUserCallback = debug_callback;
    mi.pUserData = c.get();
    check(create_messenger(c->instance_, &mi, nullptr, &c->messenger_), "vkCreateDebugUtilsMessengerEXT");
  }
  std::vector<VkPhysicalDevice> pds = physical_devices(c->instance_);
  if (pds.empty()) fail("vulkan: no Vulkan device found");
  if (o.device_index < 0 || size_t(o.device_index) >= pds.size()) {
    std::string names;
    for (size_t i = 0; i < pds.size(); ++i) names += "\n  " + query_device(pds[i], int(i)).summary();
    fail("vulkan: device index {} is out of range: {} device(s):{}", o.device_index, pds.size(), names);
  }
  c->physical_ = pds[size_t(o.device_index)];
  c->info_ = query_device(c->physical_, o.device_index);
  const DeviceInfo& d = c->info_;
  if (d.api_version < VK_API_VERSION_1_2)
    fail("vulkan: device {} supports Vulkan {} but nibble needs 1.2", d.name, version_str(d.api_version));
  vkGetPhysicalDeviceMemoryProperties(c->physical_, &c->mem_);

  // A compute queue: prefer a compute-only family (async compute), else any with compute.
  uint32_t nq = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(c->physical_, &nq, nullptr);
  std::vector<VkQueueFamilyProperties> qf(nq);
  vkGetPhysicalDeviceQueueFamilyProperties(c->physical_, &nq, qf.data());
  int family = -1;
  for (uint32_t i = 0; i < nq; ++i)
    if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && family < 0) family = int(i);
  if (family < 0) fail("vulkan: device {} has no compute queue", d.name);
  c->queue_family_ = uint32_t(family);
  c->timestamp_bits_ = qf[size_t(family)].timestampValidBits;
  if (c->timestamp_bits_ == 0) c->info_.timestamps = false;

  // Enable every feature the compiler may use that the device has.
  VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceShaderIntegerDotProductFeatures fdot{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  f2.pNext = &f11;
  f11.pNext = &f12;
  f2.features.shaderInt16 = d.int16;
  f2.features.shaderInt64 = d.int64;
  f11.storageBuffer16BitAccess = d.storage16;
  f12.storageBuffer8BitAccess = d.storage8;
  f12.shaderFloat16 = d.float16;
  f12.shaderInt8 = d.int8;
  std::vector<const char*> exts;
  if (d.int_dot) {
    f12.pNext = &fdot;
    fdot.shaderIntegerDotProduct = VK_TRUE;
    if (d.api_version < VK_API_VERSION_1_3) exts.push_back(VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
  }
  uint32_t feats = 0;
  if (d.subgroup_basic && d.subgroup_arithmetic) feats |= kFeatSubgroupArith;
  if (d.storage16) feats |= kFeatStorage16;
  if (d.storage8) feats |= kFeatStorage8;
  if (d.float16) feats |= kFeatFloat16;
  if (d.int8) feats |= kFeatInt8;
  if (d.int16) feats |= kFeatInt16;
  if (d.int_dot) feats |= kFeatIntDot;
  c->enabled_features_ = feats;

  float prio = 1.0f;
  VkDeviceQueueCreateInfo qi{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qi.queueFamilyIndex = c->queue_family_;
  qi.queueCount = 1;
  qi.pQueuePriorities = &prio;
  VkDeviceCreateInfo di{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  di.pNext = &f2;
  di.queueCreateInfoCount = 1;
  di.pQueueCreateInfos = &qi;
  di.enabledExtensionCount = uint32_t(exts.size());
  di.ppEnabledExtensionNames = exts.data();
  check(vkCreateDevice(c->physical_, &di, nullptr, &c->device_), "vkCreateDevice");
  vkGetDeviceQueue(c->device_, c->queue_family_, 0, &c->queue_);
  return c;
}

Context::~Context() {
  if (device_) {
    vkDeviceWaitIdle(device_);
    vkDestroyDevice(device_, nullptr);
  }
  if (messenger_) {
    auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(instance_, "vkDestroyDebugUtilsMessengerEXT"));
    if (destroy) destroy(instance_, messenger_, nullptr);
  }
  if (instance_) vkDestroyInstance(instance_, nullptr);
}

int Context::memory_type(uint32_t type_bits, VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred) const {
  for (int pass = 0; pass < 2; ++pass) {
    VkMemoryPropertyFlags want = required | (pass == 0 ? preferred : 0);
    for (uint32_t t = 0; t < mem_.memoryTypeCount; ++t)
      if ((type_bits & (1u << t)) && (mem_.memoryTypes[t].propertyFlags & want) == want) return int(t);
  }
  return -1;
}

VkMemoryPropertyFlags Context::memory_flags(int type) const { return mem_.memoryTypes[type].propertyFlags; }

uint64_t Context::memory_heap_bytes(int type) const { return mem_.memoryHeaps[mem_.memoryTypes[type].heapIndex].size; }

std::vector<std::string> Context::take_messages() {
  std::lock_guard<std::mutex> lock(messages_mutex_);
  std::vector<std::string> m;
  m.swap(messages_);
  return m;
}

void Context::add_message(std::string m) {
  std::lock_guard<std::mutex> lock(messages_mutex_);
  messages_.push_back(std::move(m));
}

}  // namespace nibble::vk
