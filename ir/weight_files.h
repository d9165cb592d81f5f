// Binds weights declared in IR text ({file = "...", offset = N}) to their bytes, so a printed
// module runs again exactly as the model it was dumped from.
#pragma once
#include "ir/ir.h"

namespace nibble {

// Maps each referenced file once (kept alive by the module) and checks every weight lies inside
// it. Weights already bound or without a file attribute are left alone. Throws nibble::Error.
void bind_weight_files(Module& m);

}  // namespace nibble
