// libFuzzer entry: any input must either parse or throw nibble::Error; anything else is a bug.
#include <cstddef>
#include <cstdint>

#include "frontends/gguf/gguf.h"
#include "support/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = nibble::gguf::File::parse(data, size, "fuzz");
    // Touch what a consumer would, so bad views surface under ASan.
    uint64_t sum = 0;
    for (const auto& t : f->tensors())
      if (t.nbytes) sum += t.data[0] + t.data[t.nbytes - 1];
    for (const auto& [k, v] : f->metadata()) sum += k.size() + v.array.size();
    if (sum == 1) return 0;
  } catch (const nibble::Error&) {
  }
  return 0;
}
