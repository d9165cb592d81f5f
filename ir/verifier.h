// The verifier: structural rules (unique names, defs before uses) plus each op's type rule.
#pragma once
#include <string>
#include <vector>

#include "ir/ir.h"

namespace nibble {

// Every problem found, each as "line:col: what" (or "@func: what" for ops built in memory).
std::vector<std::string> verify(const Module& m);
// Throws nibble::Error listing the problems, each prefixed by `source` ("file.nir" or a pass name).
void verify_or_throw(const Module& m, const std::string& source);

}  // namespace nibble
