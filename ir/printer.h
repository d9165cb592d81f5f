// The textual IR. print(parse(text)) == text for any printed text: numeric value names are
// renumbered in order, other names kept.
#pragma once
#include <string>

#include "ir/ir.h"

namespace nibble {

std::string print_module(const Module& m);

}  // namespace nibble
