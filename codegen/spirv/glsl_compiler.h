// GLSL compute shaders to SPIR-V, in process: glslang's C API (Vulkan 1.2, SPIR-V 1.5), then
// SPIRV-Tools: validation (SPV_ENV_VULKAN_1_2) and the performance passes. Results are cached by
// source text for the life of the process (identical kernels compile once).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nibble::vk {

struct GlslCompileOptions {
  bool optimize = true;
  bool validate = true;
};

// Compiles `source` (a complete compute shader); `name` labels errors. Throws nibble::Error with
// glslang's log and the offending source lines, or the validator's message.
std::vector<uint32_t> compile_glsl(const std::string& source, const std::string& name,
                                   const GlslCompileOptions& o = {});

// Runs the SPIR-V validator (Vulkan 1.2 rules); returns "" when valid, else the messages.
std::string validate_spirv(const std::vector<uint32_t>& words);

// vk::Feature bits implied by the module's OpCapability instructions.
uint32_t spirv_features(const std::vector<uint32_t>& words);

struct GlslCacheStats {
  size_t compiled = 0, hits = 0;
  double seconds = 0;  // spent compiling (glslang + validation + optimization)
};
GlslCacheStats glsl_cache_stats();

}  // namespace nibble::vk
