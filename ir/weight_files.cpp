#include "ir/weight_files.h"

#include <map>
#include <memory>

#include "support/error.h"
#include "support/mapped_file.h"

namespace nibble {

void bind_weight_files(Module& m) {
  std::map<std::string, std::shared_ptr<MappedFile>> files;
  for (WeightDecl& w : m.weights) {
    if (w.data) continue;
    auto file = w.attrs.get_string("file");
    if (!file) continue;
    auto offset = w.attrs.get_int("offset");
    if (!offset || *offset < 0) fail("weight @{}: needs a non-negative integer 'offset' with its 'file'", w.name);
    auto& f = files[*file];
    if (!f) {
      f = std::make_shared<MappedFile>(*file);
      m.keep_alive.push_back(f);
    }
    const int64_t k = w.type.rank() ? w.type.dims.back().value : 1;
    const int64_t bytes = row_bytes(w.type.dtype, k) * (w.type.num_elements() / k);
    if (uint64_t(*offset) > f->size() || uint64_t(bytes) > f->size() - uint64_t(*offset))
      fail("weight @{}: {} bytes at offset {} run past the end of {} ({} bytes)", w.name, bytes, *offset, *file,
           f->size());
    w.data = f->data() + *offset;
  }
}

}  // namespace nibble
