// The pass pipelines, as scripts: what runs, in order, for each target.
#pragma once
#include <string>
#include <vector>

namespace nibble {

// The pipeline `nibble ir --target T`, `compile` and `generate` run for target T (ref, cpu, vulkan).
std::vector<std::string> default_pipeline(const std::string& target);

}  // namespace nibble
