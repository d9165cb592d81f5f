// GGUF reader. The whole file is validated up front so that consumers can trust every TensorInfo:
// counts and lengths are checked against the bytes left before anything is allocated, and all
// offset arithmetic is overflow-checked.
#include <algorithm>
#include <bit>
#include <cstring>
#include <numeric>

#include "frontends/gguf/gguf.h"
#include "support/error.h"

namespace nibble::gguf {

static_assert(std::endian::native == std::endian::little, "GGUF fields are read in place as little-endian");

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr uint32_t kMaxValueType = static_cast<uint32_t>(ValueType::F64);
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;              // empty key, type, smallest value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, n_dims, one ne, type, offset

// Smallest encoding of one value of type t, used to bound element counts before allocating.
uint64_t min_value_bytes(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    case ValueType::STRING: return 8;  // length
    case ValueType::ARRAY: return 12;  // element type + count
  }
  return 1;
}

bool checked_add(uint64_t a, uint64_t b, uint64_t* r) { return !__builtin_add_overflow(a, b, r); }
bool checked_mul(uint64_t a, uint64_t b, uint64_t* r) { return !__builtin_mul_overflow(a, b, r); }
bool checked_align(uint64_t v, uint64_t align, uint64_t* r) {
  if (!checked_add(v, align - 1, r)) return false;
  *r &= ~(align - 1);
  return true;
}

// Bounds-checked little-endian cursor. Errors read "PATH: offset N: CONTEXT: message", where the
// context names the metadata key or tensor being read.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n, const std::string& path) : p_(p), size_(n), path_(path) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  void set_context(std::string ctx) { ctx_ = std::move(ctx); }

  template <typename... A>
  [[noreturn]] void fail_at(uint64_t off, fmt::format_string<A...> f, A&&... a) const {
    std::string msg = fmt::format(f, std::forward<A>(a)...);
    if (ctx_.empty()) nibble::fail("{}: offset {}: {}", path_, off, msg);
    nibble::fail("{}: offset {}: {}: {}", path_, off, ctx_, msg);
  }

  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      fail_at(pos_, "unexpected end of file reading {} (need {} bytes, {} left)", what, n, remaining());
  }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }

  std::string_view str(const char* what) {
    size_t at = pos_;
    uint64_t n = read<uint64_t>(what);
    if (n > remaining())
      fail_at(at, "{} length {} exceeds the {} bytes left in the file", what, n, remaining());
    std::string_view s(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return s;
  }

  ValueType value_type(const char* what) {
    size_t at = pos_;
    uint32_t t = read<uint32_t>(what);
    if (t > kMaxValueType) fail_at(at, "{} {} is not a GGUF value type (expected 0..{})", what, t, kMaxValueType);
    return static_cast<ValueType>(t);
  }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
  std::string ctx_;
};

struct ValueParser {
  Cursor& c;
  uint64_t budget = kMaxMetadataValues;  // array elements left for the whole file

  Value parse(ValueType t, int depth) {
    Value v;
    v.type = t;
    switch (t) {
      case ValueType::U8: v.u = c.read<uint8_t>("u8 value"); break;
      case ValueType::U16: v.u = c.read<uint16_t>("u16 value"); break;
      case ValueType::U32: v.u = c.read<uint32_t>("u32 value"); break;
      case ValueType::U64: v.u = c.read<uint64_t>("u64 value"); break;
      case ValueType::I8: v.i = c.read<int8_t>("i8 value"); break;
      case ValueType::I16: v.i = c.read<int16_t>("i16 value"); break;
      case ValueType::I32: v.i = c.read<int32_t>("i32 value"); break;
      case ValueType::I64: v.i = c.read<int64_t>("i64 value"); break;
      case ValueType::F32: v.f = c.read<float>("f32 value"); break;
      case ValueType::F64: v.f = c.read<double>("f64 value"); break;
      case ValueType::BOOL: {
        size_t at = c.pos();
        v.u = c.read<uint8_t>("bool value");
        if (v.u > 1) c.fail_at(at, "bool value {} (expected 0 or 1)", v.u);
        break;
      }
      case ValueType::STRING: v.s = c.str("string value"); break;
      case ValueType::ARRAY: parse_array(v, depth + 1); break;
    }
    return v;
  }

  void parse_array(Value& v, int depth) {
    size_t at = c.pos();
    if (depth > kMaxArrayDepth) c.fail_at(at, "arrays nested deeper than {} levels", kMaxArrayDepth);
    v.elem_type = c.value_type("array element type");
    uint64_t n = c.read<uint64_t>("array length");
    uint64_t min = min_value_bytes(v.elem_type);
    if (n > c.remaining() / min)
      c.fail_at(at, "array of {} {} elements needs at least {} bytes each, only {} bytes left", n,
                value_type_name(v.elem_type), min, c.remaining());
    if (n > budget)
      c.fail_at(at, "array of {} elements exceeds the limit of {} metadata array elements per file", n,
                kMaxMetadataValues);
    budget -= n;
    v.array.reserve(n);
    for (uint64_t k = 0; k < n; ++k) v.array.push_back(parse(v.elem_type, depth));
  }
};

}  // namespace

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

std::unique_ptr<File> File::open(const std::string& path) {
  std::unique_ptr<File> f(new File());
  f->map_ = MappedFile(path);
  f->path_ = path;
  f->bytes_ = f->map_.data();
  f->size_ = f->map_.size();
  f->parse_all();
  return f;
}

std::unique_ptr<File> File::parse(const uint8_t* bytes, size_t size, const std::string& name) {
  std::unique_ptr<File> f(new File());
  f->path_ = name;
  f->bytes_ = bytes;
  f->size_ = size;
  f->parse_all();
  return f;
}

void File::parse_all() {
  Cursor c(bytes_, size_, path_);

  // Header.
  c.set_context("header");
  uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) {
    c.fail_at(0, "bad magic {:02x} {:02x} {:02x} {:02x} (expected \"GGUF\")", magic & 0xff, (magic >> 8) & 0xff,
              (magic >> 16) & 0xff, magic >> 24);
  }
  version_ = c.read<uint32_t>("version");
  if (version_ == 1) c.fail_at(4, "GGUF version 1 is not supported (expected version 2 or 3)");
  if (version_ != 2 && version_ != 3) {
    uint32_t swapped = __builtin_bswap32(version_);
    if (swapped == 2 || swapped == 3) c.fail_at(4, "big-endian GGUF is not supported (expected little-endian)");
    c.fail_at(4, "unsupported GGUF version {} (expected version 2 or 3)", version_);
  }
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_kv > c.remaining() / kMinKvBytes)
    c.fail_at(16, "metadata count {} needs at least {} bytes each, only {} bytes left", n_kv, kMinKvBytes,
              c.remaining());
  if (n_tensors > (c.remaining() - n_kv * kMinKvBytes) / kMinTensorInfoBytes)
    c.fail_at(8, "tensor count {} needs at least {} bytes each, only {} bytes left after the metadata", n_tensors,
              kMinTensorInfoBytes, c.remaining() - n_kv * kMinKvBytes);

  // Metadata.
  ValueParser vp{c};
  std::vector<uint64_t> value_at;  // file offset of each value, for errors found later
  kv_.reserve(n_kv);
  value_at.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    size_t at = c.pos();
    c.set_context(fmt::format("metadata entry {}", k));
    std::string key(c.str("key"));
    if (kv_index_.count(key)) c.fail_at(at, "duplicate metadata key '{}'", key);
    c.set_context(fmt::format("metadata key '{}'", key));
    ValueType t = c.value_type("value type");
    value_at.push_back(c.pos());
    Value v = vp.parse(t, 0);
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (auto it = kv_index_.find("general.alignment"); it != kv_index_.end()) {
    const Value& v = kv_[it->second].second;
    c.set_context("metadata key 'general.alignment'");
    if (v.type != ValueType::U32) c.fail_at(value_at[it->second], "expected u32, got {}", value_type_name(v.type));
    if (v.u == 0 || !std::has_single_bit(v.u))
      c.fail_at(value_at[it->second], "alignment {} is not a nonzero power of two", v.u);
    alignment_ = v.u;
  }

  // Tensor infos.
  std::vector<uint64_t> offset_at;  // file offset of each tensor's data offset field
  tensors_.reserve(n_tensors);
  offset_at.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    size_t at = c.pos();
    c.set_context(fmt::format("tensor info {}", k));
    TensorInfo ti;
    ti.name = c.str("tensor name");
    if (ti.name.empty()) c.fail_at(at, "empty tensor name");
    if (tensor_index_.count(ti.name)) c.fail_at(at, "duplicate tensor name '{}'", ti.name);
    c.set_context(fmt::format("tensor '{}'", ti.name));

    size_t dims_at = c.pos();
    uint32_t n_dims = c.read<uint32_t>("n_dims");
    if (n_dims == 0 || n_dims > kMaxDims) c.fail_at(dims_at, "n_dims {} (expected 1..{})", n_dims, kMaxDims);
    size_t ne_at = c.pos();
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      size_t d_at = c.pos();
      uint64_t n = c.read<uint64_t>("ne");
      if (n == 0 || n > static_cast<uint64_t>(INT64_MAX))
        c.fail_at(d_at, "ne[{}] = {} (expected a positive size below 2^63)", d, n);
      if (!checked_mul(n_elements, n, &n_elements) || n_elements > static_cast<uint64_t>(INT64_MAX))
        c.fail_at(ne_at, "element count overflows int64");
      ti.ne.push_back(static_cast<int64_t>(n));
    }

    size_t type_at = c.pos();
    ti.ggml_type = c.read<uint32_t>("tensor type");
    std::optional<DType> dt = dtype_from_ggml(ti.ggml_type);
    if (!dt) {
      if (const char* name = ggml_type_name(ti.ggml_type))
        c.fail_at(type_at, "unsupported ggml type {} ({})", ti.ggml_type, name);
      c.fail_at(type_at, "unknown ggml type {}", ti.ggml_type);
    }
    ti.dtype = *dt;
    const DTypeInfo& info = dtype_info(ti.dtype);
    uint64_t row = static_cast<uint64_t>(ti.ne[0]);
    if (row % info.block_size != 0)
      c.fail_at(ne_at, "row length {} is not a multiple of the {} block size {}", row, info.name, info.block_size);
    uint64_t nbytes = row / info.block_size;
    bool ok = checked_mul(nbytes, info.bytes_per_block, &nbytes);
    for (size_t d = 1; d < ti.ne.size(); ++d) ok = ok && checked_mul(nbytes, ti.ne[d], &nbytes);
    if (!ok) c.fail_at(ne_at, "data size overflows 64 bits");
    ti.nbytes = nbytes;

    offset_at.push_back(c.pos());
    ti.offset = c.read<uint64_t>("data offset");
    if (ti.offset % alignment_ != 0)
      c.fail_at(offset_at.back(), "data offset {} is not a multiple of the alignment {}", ti.offset, alignment_);

    tensor_index_.emplace(ti.name, tensors_.size());
    tensors_.push_back(std::move(ti));
  }

  // Data section: starts at the next aligned offset; files without tensors may end before it.
  c.set_context("");
  if (!checked_align(c.pos(), alignment_, &data_offset_)) c.fail_at(c.pos(), "data section offset overflows");
  for (size_t k = 0; k < tensors_.size(); ++k) {
    TensorInfo& ti = tensors_[k];
    c.set_context(fmt::format("tensor '{}'", ti.name));
    uint64_t end = 0, padded = 0;
    if (!checked_add(data_offset_, ti.offset, &ti.file_offset) || !checked_add(ti.file_offset, ti.nbytes, &end) ||
        !checked_align(end, alignment_, &padded))
      c.fail_at(offset_at[k], "data offset {} overflows", ti.offset);
    // Writers pad every tensor, the last included, and llama.cpp reads that padding too.
    if (padded > size_)
      c.fail_at(offset_at[k], "data [{}, {}) padded to {} extends past the end of the file ({} bytes)", ti.file_offset,
                end, padded, size_);
    ti.data = bytes_ + ti.file_offset;
  }

  std::vector<size_t> order(tensors_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const TensorInfo& prev = tensors_[order[k - 1]];
    const TensorInfo& cur = tensors_[order[k]];
    if (prev.file_offset + prev.nbytes > cur.file_offset) {
      c.set_context(fmt::format("tensor '{}'", cur.name));
      c.fail_at(offset_at[order[k]], "data [{}, {}) overlaps tensor '{}' at [{}, {})", cur.file_offset,
                cur.file_offset + cur.nbytes, prev.name, prev.file_offset, prev.file_offset + prev.nbytes);
    }
  }
}

// ---- Lookup ----

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {

template <typename F>
auto with_path(const std::string& path, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
}

}  // namespace

#define NIBBLE_GGUF_REQUIRE(key)                                         \
  const Value* v = find(key);                                            \
  if (!v) fail("{}: metadata key '{}': missing", path_, key)

int64_t File::get_int(std::string_view key) const {
  NIBBLE_GGUF_REQUIRE(key);
  return with_path(path_, [&] { return v->as_int(key); });
}
double File::get_float(std::string_view key) const {
  NIBBLE_GGUF_REQUIRE(key);
  return with_path(path_, [&] { return v->as_float(key); });
}
bool File::get_bool(std::string_view key) const {
  NIBBLE_GGUF_REQUIRE(key);
  return with_path(path_, [&] { return v->as_bool(key); });
}
const std::string& File::get_string(std::string_view key) const {
  NIBBLE_GGUF_REQUIRE(key);
  return with_path(path_, [&]() -> const std::string& { return v->as_string(key); });
}
const std::vector<Value>& File::get_array(std::string_view key) const {
  NIBBLE_GGUF_REQUIRE(key);
  if (v->type != ValueType::ARRAY)
    fail("{}: metadata key '{}': expected an array, got {}", path_, key, value_type_name(v->type));
  return v->array;
}
#undef NIBBLE_GGUF_REQUIRE

int64_t File::get_int(std::string_view key, int64_t def) const {
  const Value* v = find(key);
  return v ? with_path(path_, [&] { return v->as_int(key); }) : def;
}
double File::get_float(std::string_view key, double def) const {
  const Value* v = find(key);
  return v ? with_path(path_, [&] { return v->as_float(key); }) : def;
}
bool File::get_bool(std::string_view key, bool def) const {
  const Value* v = find(key);
  return v ? with_path(path_, [&] { return v->as_bool(key); }) : def;
}
std::string File::get_string(std::string_view key, const std::string& def) const {
  const Value* v = find(key);
  return v ? with_path(path_, [&] { return v->as_string(key); }) : def;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::tensor(std::string_view name) const {
  if (const TensorInfo* t = find_tensor(name)) return *t;
  fail("{}: no tensor named '{}'", path_, name);
}

}  // namespace nibble::gguf
