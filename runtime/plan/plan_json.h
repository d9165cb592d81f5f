// The "plan" section of a plan file: rt::CpuPlan or vk::VulkanPlan as JSON. Pointers are replaced by
// offsets: each weight blob by its offset in the "weights" section, each SPIR-V module by its offset
// in the "code" section. Floats are stored as their bit patterns (exact, and NaN/inf survive).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/cpu/plan.h"
#include "runtime/vulkan/plan.h"

namespace nibble::rt {

// weight_offsets[i]: where plan.weights[i]'s bytes are in the weights section.
nlohmann::json cpu_plan_to_json(const CpuPlan& plan, const std::vector<uint64_t>& weight_offsets);
// Binds weights into `weights` (the mapped section); throws nibble::Error naming `what` when the
// JSON is malformed or a weight lies outside the section.
CpuPlan cpu_plan_from_json(const nlohmann::json& j, std::span<const uint8_t> weights, const std::string& what);

// spirv_offsets[i]: where plan.kernels[i].spirv is in the code section (4-byte aligned).
nlohmann::json vulkan_plan_to_json(const vk::VulkanPlan& plan, const std::vector<uint64_t>& weight_offsets,
                                   const std::vector<uint64_t>& spirv_offsets);
vk::VulkanPlan vulkan_plan_from_json(const nlohmann::json& j, std::span<const uint8_t> weights,
                                     std::span<const uint8_t> code, const std::string& what);

}  // namespace nibble::rt
