// GGUF (v2, v3) reader: the file is memory-mapped; tensors are views into it, never copied.
// Every offset, size, count and string length is checked against the file before use; a malformed
// file throws nibble::Error("PATH: offset N: what was wrong").
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/dtype.h"
#include "support/mapped_file.h"

namespace nibble::gguf {

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* value_type_name(ValueType t);
// ggml's name (lowercased) for a ggml_type id: "q4_k", "iq4_xs", ...; also ids without a DType. Null if unknown.
const char* ggml_type_name(uint32_t ggml_type);

inline constexpr uint64_t kDefaultAlignment = 32;
inline constexpr int kMaxArrayDepth = 16;              // arrays nested deeper are rejected
inline constexpr uint64_t kMaxMetadataValues = 1u << 24;  // array elements per file, bounds memory

// One metadata value. Scalars keep their GGUF type; numeric accessors convert with range checks.
struct Value {
  ValueType type = ValueType::U8;
  uint64_t u = 0;        // U8..U64, BOOL
  int64_t i = 0;         // I8..I64
  double f = 0;          // F32, F64
  std::string s;         // STRING
  ValueType elem_type = ValueType::U8;  // ARRAY: element type
  std::vector<Value> array;             // ARRAY elements (arrays of arrays allowed)

  bool is_integer() const;
  bool is_float() const { return type == ValueType::F32 || type == ValueType::F64; }
  // Throw nibble::Error naming `key` if the value is not of a fitting type or out of range.
  int64_t as_int(std::string_view key) const;
  double as_float(std::string_view key) const;  // integers convert too
  bool as_bool(std::string_view key) const;
  const std::string& as_string(std::string_view key) const;

  // Builders; each throws nibble::Error when the type does not fit the value.
  static Value of_uint(ValueType t, uint64_t v);  // U8, U16, U32, U64
  static Value of_int(ValueType t, int64_t v);    // I8, I16, I32, I64
  static Value of_float(ValueType t, double v);   // F32, F64
  static Value of_bool(bool v);
  static Value of_string(std::string v);
  static Value of_array(ValueType elem, std::vector<Value> elems);
  // Same type and contents (floats compared bitwise, so NaN equals itself).
  bool operator==(const Value& o) const;
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> ne;   // GGML order: ne[0] is the innermost (contiguous) dimension
  uint32_t ggml_type = 0;
  DType dtype = DType::F32;
  uint64_t offset = 0;       // relative to the start of the data section
  uint64_t file_offset = 0;  // absolute offset in the file
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // points into the mapping
  int64_t n_elements() const;
};

class File {
 public:
  // Maps and validates the file. Throws nibble::Error on any malformed content.
  static std::unique_ptr<File> open(const std::string& path);
  // Parses an in-memory image (used by the fuzzer and tests); `bytes` must outlive the File.
  static std::unique_ptr<File> parse(const uint8_t* bytes, size_t size, const std::string& name);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const uint8_t* bytes() const { return bytes_; }
  size_t size() const { return size_; }

  // Metadata in file order, and lookup by key.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Typed getters: throw nibble::Error "PATH: metadata key K: ..." when missing or of the wrong type.
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  const std::vector<Value>& get_array(std::string_view key) const;
  // Defaulted variants return `def` when the key is absent (but still throw on a wrong type).
  int64_t get_int(std::string_view key, int64_t def) const;
  double get_float(std::string_view key, double def) const;
  bool get_bool(std::string_view key, bool def) const;
  std::string get_string(std::string_view key, const std::string& def) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;  // null when absent
  const TensorInfo& tensor(std::string_view name) const;       // throws when absent

 private:
  File() = default;
  void parse_all();
  MappedFile map_;
  std::string path_;
  const uint8_t* bytes_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Writes GGUF v3. Metadata and tensors are written in the order added; tensor data is aligned to
// `general.alignment` (32 unless set). Reading the result back gives the same metadata and bytes.
class Writer {
 public:
  void set(const std::string& key, Value v);  // replaces an existing key in place
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_string_array(const std::string& key, const std::vector<std::string>& v);
  // `ne` in GGML order; `data` must hold the exact number of bytes for the type and shape.
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, std::vector<uint8_t> data);
  // Streaming: a tensor whose bytes are made while the file is written (write / to_bytes), so a large
  // model never has all its data in memory. `produce` is called once per write, in tensor order, and must
  // pass exactly the tensor's byte count to `out`, in pieces of any size; otherwise the write fails.
  using ByteSink = std::function<void(const void* data, size_t n)>;
  using Producer = std::function<void(const ByteSink& out)>;
  void add_tensor_stream(const std::string& name, DType type, std::vector<int64_t> ne, Producer produce);
  // Copy everything (metadata, tensors) from an existing file, to then modify and write.
  static Writer copy_of(const File& f);
  void write(const std::string& path) const;  // throws nibble::Error on I/O failure
  std::vector<uint8_t> to_bytes() const;       // the same image, in memory

 private:
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
    uint64_t nbytes = 0;  // data.size(), or what `produce` must emit
    Producer produce;     // streaming tensors only
  };
  std::optional<uint64_t> check_new_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne) const;
  // Validates everything, then streams the image to `out` in order.
  void emit(const std::function<void(const void*, size_t)>& out) const;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace nibble::gguf
