// Vulkan instance and device: enumeration with the features the SPIR-V compiler uses, selection by
// index, a logical device with those features enabled, optional validation with a debug messenger.
// Every failure is a nibble::Error that names what was missing.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <vulkan/vulkan.h>

namespace nibble::vk {

struct DeviceInfo {
  int index = -1;
  std::string name;
  std::string type;  // discrete, integrated, virtual, cpu, other
  std::string driver_name, driver_info;
  uint32_t driver_version = 0, api_version = 0, vendor_id = 0, device_id = 0;

  // Subgroups (compute stage).
  uint32_t subgroup_size = 0, min_subgroup_size = 0, max_subgroup_size = 0;
  bool subgroup_basic = false, subgroup_vote = false, subgroup_arithmetic = false, subgroup_ballot = false,
       subgroup_shuffle = false, subgroup_shuffle_relative = false, subgroup_clustered = false,
       subgroup_quad = false;
  // Storage and arithmetic types.
  bool storage16 = false, storage8 = false, float16 = false, int8 = false, int16 = false, int64 = false;
  bool int_dot = false, int_dot_accelerated = false;  // 4x8-bit packed signed dot product
  // Limits.
  bool timestamps = false;
  double timestamp_period_ns = 0;
  uint32_t max_shared_bytes = 0, max_workgroup_invocations = 0, max_workgroup_size_x = 0;
  uint32_t max_group_count[3] = {0, 0, 0};
  uint64_t max_storage_range = 0, min_storage_align = 0, max_alloc_bytes = 0, max_buffer_bytes = 0;
  uint32_t max_push_bytes = 0;
  uint64_t device_local_bytes = 0;  // the largest device-local heap
  bool unified_memory = false;      // some device-local memory is host-visible

  std::string summary() const;   // one line: index, name, type, driver, API
  std::string features() const;  // one line: what the compiler can use
};

// Every physical device; empty when there is no Vulkan loader, driver or device.
std::vector<DeviceInfo> list_devices();

struct ContextOptions {
  int device_index = 0;
  bool validation = false;  // VK_LAYER_KHRONOS_validation + a debug messenger collecting messages
};

// An instance, one physical device and a logical device with one compute queue. Shared by
// executors (shared_ptr); the queue is used under queue_mutex().
class Context {
 public:
  static std::shared_ptr<Context> create(const ContextOptions& o);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const DeviceInfo& info() const { return info_; }
  VkInstance instance() const { return instance_; }
  VkPhysicalDevice physical() const { return physical_; }
  VkDevice device() const { return device_; }
  VkQueue queue() const { return queue_; }
  uint32_t queue_family() const { return queue_family_; }
  std::mutex& queue_mutex() { return queue_mutex_; }
  uint32_t enabled_features() const { return enabled_features_; }  // vk::Feature bits
  bool validation() const { return validation_; }
  uint32_t timestamp_valid_bits() const { return timestamp_bits_; }

  // A memory type among type_bits with all `required` flags, preferring one with `preferred`; -1: none.
  int memory_type(uint32_t type_bits, VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred) const;
  VkMemoryPropertyFlags memory_flags(int type) const;
  uint64_t memory_heap_bytes(int type) const;  // size of the heap a memory type allocates from

  // Validation messages collected since the last call (errors and warnings).
  std::vector<std::string> take_messages();
  void add_message(std::string m);

 private:
  Context() = default;
  DeviceInfo info_;
  VkInstance instance_ = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0, timestamp_bits_ = 0;
  uint32_t enabled_features_ = 0;
  bool validation_ = false;
  VkPhysicalDeviceMemoryProperties mem_{};
  std::mutex queue_mutex_, messages_mutex_;
  std::vector<std::string> messages_;
};

const char* result_name(VkResult r);
// Throws nibble::Error "vulkan: <what> failed: <result>" (out-of-memory and device loss explained).
[[noreturn]] void throw_vk(VkResult r, const std::string& what);
inline void check(VkResult r, const char* what) {
  if (r != VK_SUCCESS) throw_vk(r, what);
}

}  // namespace nibble::vk
