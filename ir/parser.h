// Parses the textual IR (see docs/ir.md). Errors throw nibble::Error "file:line:col: expected X, got Y".
// The parser checks syntax and names; run the verifier for types.
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "ir/ir.h"

namespace nibble {

std::unique_ptr<Module> parse_module(std::string_view text, const std::string& file_name);
std::unique_ptr<Module> parse_module_file(const std::string& path);

}  // namespace nibble
