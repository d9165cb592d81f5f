#include "nqv1.h"

#include <cstring>
#include <fstream>
#include <iterator>

#include "support/error.h"

namespace nibble::test {
namespace {

class Cursor {
 public:
  Cursor(const std::string& path, const std::vector<uint8_t>& bytes) : path_(path), bytes_(bytes) {}

  void read(void* dst, size_t n, const char* what) {
    if (bytes_.size() - pos_ < n)
      fail("{}: truncated at offset {}: need {} bytes for {}, {} left", path_, pos_, n, what, bytes_.size() - pos_);
    std::memcpy(dst, bytes_.data() + pos_, n);
    pos_ += n;
  }
  uint32_t u32(const char* what) {
    uint8_t b[4];
    read(b, 4, what);
    return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
  }
  size_t pos() const { return pos_; }
  size_t left() const { return bytes_.size() - pos_; }

 private:
  const std::string& path_;
  const std::vector<uint8_t>& bytes_;
  size_t pos_ = 0;
};

}  // namespace

std::string quant_vector_path(const std::string& ggml_type_name) {
  return std::string(NIBBLE_SHARED_DIR) + "/reference/quant/" + ggml_type_name + ".bin";
}

QuantVectors read_quant_vectors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Cursor cur(path, bytes);

  char magic[4];
  cur.read(magic, 4, "magic");
  if (std::memcmp(magic, "NQV1", 4) != 0) fail("{}: bad magic (expected \"NQV1\")", path);
  const uint32_t name_len = cur.u32("name length");
  if (name_len == 0 || name_len > 64) fail("{}: implausible type name length {}", path, name_len);
  QuantVectors v;
  v.type_name.resize(name_len);
  cur.read(v.type_name.data(), name_len, "type name");
  const auto type = dtype_from_name(v.type_name);
  if (!type) fail("{}: unknown type name \"{}\"", path, v.type_name);
  v.type = *type;
  const DTypeInfo& info = dtype_info(v.type);

  v.n_rows = cur.u32("n_rows");
  v.n_cols = cur.u32("n_cols");
  v.block_size = int(cur.u32("block_size"));
  v.bytes_per_block = int(cur.u32("bytes_per_block"));
  if (v.block_size != info.block_size || v.bytes_per_block != info.bytes_per_block)
    fail("{}: {} blocks of {} elements / {} bytes, the DType table says {} / {}", path, v.type_name, v.block_size,
         v.bytes_per_block, info.block_size, info.bytes_per_block);
  if (v.n_rows <= 0 || v.n_cols <= 0 || v.n_cols % v.block_size != 0 || v.n_rows * v.n_cols > (1 << 26))
    fail("{}: bad shape {} x {} for block size {}", path, v.n_rows, v.n_cols, v.block_size);

  const size_t n = size_t(v.n_rows * v.n_cols);
  const size_t qbytes = size_t(v.n_rows * v.row_bytes());
  const size_t expected = 4 * n + qbytes + 4 * n;
  if (cur.left() != expected)
    fail("{}: payload after the {}-byte header is {} bytes, expected {} (2 x {} floats + {} block bytes)", path,
         cur.pos(), cur.left(), expected, n, qbytes);
  v.input.resize(n);
  v.quantized.resize(qbytes);
  v.dequantized.resize(n);
  cur.read(v.input.data(), 4 * n, "input");
  cur.read(v.quantized.data(), qbytes, "quantized blocks");
  cur.read(v.dequantized.data(), 4 * n, "dequantized");
  return v;
}

}  // namespace nibble::test
