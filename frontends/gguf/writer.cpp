// GGUF v3 writer, laid out as llama.cpp and gguf-py do: header, metadata, tensor infos, zero padding
// to the alignment, then each tensor's data followed by zero padding to the alignment.
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "frontends/gguf/gguf.h"
#include "support/error.h"

namespace nibble::gguf {

namespace {

constexpr uint32_t kVersion = 3;

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

// Values built by hand may not fit their declared type; catch that before writing a corrupt file.
void check_value(const Value& v, const std::string& key, int depth) {
  uint64_t umax = 0;
  int64_t lo = 0, hi = 0;
  switch (v.type) {
    case ValueType::U8: umax = UINT8_MAX; break;
    case ValueType::U16: umax = UINT16_MAX; break;
    case ValueType::U32: umax = UINT32_MAX; break;
    case ValueType::U64: umax = UINT64_MAX; break;
    case ValueType::BOOL: umax = 1; break;
    case ValueType::I8: lo = INT8_MIN, hi = INT8_MAX; break;
    case ValueType::I16: lo = INT16_MIN, hi = INT16_MAX; break;
    case ValueType::I32: lo = INT32_MIN, hi = INT32_MAX; break;
    case ValueType::I64: lo = INT64_MIN, hi = INT64_MAX; break;
    case ValueType::F32: case ValueType::F64: case ValueType::STRING: return;
    case ValueType::ARRAY:
      if (depth >= kMaxArrayDepth) fail("Writer: metadata key '{}': arrays nested deeper than {} levels", key, kMaxArrayDepth);
      if (static_cast<uint32_t>(v.elem_type) > static_cast<uint32_t>(ValueType::F64))
        fail("Writer: metadata key '{}': bad array element type {}", key, static_cast<uint32_t>(v.elem_type));
      for (size_t k = 0; k < v.array.size(); ++k) {
        if (v.array[k].type != v.elem_type)
          fail("Writer: metadata key '{}': array element {} is {}, expected {}", key, k,
               value_type_name(v.array[k].type), value_type_name(v.elem_type));
        check_value(v.array[k], key, depth + 1);
      }
      return;
    default: fail("Writer: metadata key '{}': bad value type {}", key, static_cast<uint32_t>(v.type));
  }
  if (lo != hi ? (v.i < lo || v.i > hi) : v.u > umax)
    fail("Writer: metadata key '{}': value does not fit in {}", key, value_type_name(v.type));
}

class Buffer {
 public:
  template <typename T>
  void put(T v) {
    size_t at = b_.size();
    b_.resize(at + sizeof v);
    std::memcpy(b_.data() + at, &v, sizeof v);
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    b_.insert(b_.end(), s.begin(), s.end());
  }
  void pad_to(uint64_t align) { b_.resize(align_up(b_.size(), align), 0); }
  void put_value(const Value& v) {
    switch (v.type) {
      case ValueType::U8: case ValueType::BOOL: put<uint8_t>(static_cast<uint8_t>(v.u)); break;
      case ValueType::U16: put<uint16_t>(static_cast<uint16_t>(v.u)); break;
      case ValueType::U32: put<uint32_t>(static_cast<uint32_t>(v.u)); break;
      case ValueType::U64: put<uint64_t>(v.u); break;
      case ValueType::I8: put<int8_t>(static_cast<int8_t>(v.i)); break;
      case ValueType::I16: put<int16_t>(static_cast<int16_t>(v.i)); break;
      case ValueType::I32: put<int32_t>(static_cast<int32_t>(v.i)); break;
      case ValueType::I64: put<int64_t>(v.i); break;
      case ValueType::F32: put<float>(static_cast<float>(v.f)); break;
      case ValueType::F64: put<double>(v.f); break;
      case ValueType::STRING: put_string(v.s); break;
      case ValueType::ARRAY:
        put<uint32_t>(static_cast<uint32_t>(v.elem_type));
        put<uint64_t>(v.array.size());
        for (const Value& e : v.array) put_value(e);
        break;
    }
  }
  const std::vector<uint8_t>& bytes() const { return b_; }

 private:
  std::vector<uint8_t> b_;
};

}  // namespace

void Writer::set(const std::string& key, Value v) {
  check_value(v, key, 0);
  for (auto& [k, old] : kv_) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  kv_.emplace_back(key, std::move(v));
}

void Writer::set_u32(const std::string& key, uint32_t v) { set(key, Value::of_uint(ValueType::U32, v)); }
void Writer::set_i32(const std::string& key, int32_t v) { set(key, Value::of_int(ValueType::I32, v)); }
void Writer::set_f32(const std::string& key, float v) { set(key, Value::of_float(ValueType::F32, v)); }
void Writer::set_bool(const std::string& key, bool v) { set(key, Value::of_bool(v)); }
void Writer::set_string(const std::string& key, const std::string& v) { set(key, Value::of_string(v)); }

void Writer::set_string_array(const std::string& key, const std::vector<std::string>& v) {
  std::vector<Value> elems;
  elems.reserve(v.size());
  for (const std::string& s : v) elems.push_back(Value::of_string(s));
  set(key, Value::of_array(ValueType::STRING, std::move(elems)));
}

// The checks every added tensor gets; returns the size its data must have, or nullopt if that overflows.
std::optional<uint64_t> Writer::check_new_tensor(const std::string& name, DType type,
                                                 const std::vector<int64_t>& ne) const {
  if (name.empty()) fail("Writer: empty tensor name");
  for (const Tensor& t : tensors_)
    if (t.name == name) fail("Writer: duplicate tensor name '{}'", name);
  const DTypeInfo& info = dtype_info(type);
  if (info.ggml_type < 0) fail("Writer: tensor '{}': type {} has no ggml id", name, info.name);
  if (ne.empty() || ne.size() > 4) fail("Writer: tensor '{}': {} dimensions (expected 1..4)", name, ne.size());
  for (int64_t d : ne)
    if (d <= 0) fail("Writer: tensor '{}': dimension {} is not positive", name, d);
  if (ne[0] % info.block_size != 0)
    fail("Writer: tensor '{}': row length {} is not a multiple of the {} block size {}", name, ne[0], info.name,
         info.block_size);
  uint64_t nbytes = static_cast<uint64_t>(ne[0] / info.block_size);
  bool ok = !__builtin_mul_overflow(nbytes, static_cast<uint64_t>(info.bytes_per_block), &nbytes);
  for (size_t d = 1; d < ne.size(); ++d) ok = ok && !__builtin_mul_overflow(nbytes, static_cast<uint64_t>(ne[d]), &nbytes);
  if (!ok) return std::nullopt;
  return nbytes;
}

void Writer::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, std::vector<uint8_t> data) {
  std::optional<uint64_t> nbytes = check_new_tensor(name, type, ne);
  if (!nbytes || *nbytes != data.size())
    fail("Writer: tensor '{}': {} bytes of data, expected {} for {} of this shape", name, data.size(),
         nbytes ? fmt::to_string(*nbytes) : std::string("an overflowing size"), dtype_info(type).name);
  tensors_.push_back(Tensor{name, type, std::move(ne), std::move(data), *nbytes, nullptr});
}

void Writer::add_tensor_stream(const std::string& name, DType type, std::vector<int64_t> ne, Producer produce) {
  if (!produce) fail("Writer: tensor '{}': no producer", name);
  std::optional<uint64_t> nbytes = check_new_tensor(name, type, ne);
  if (!nbytes) fail("Writer: tensor '{}': the size of a {} tensor of this shape overflows", name, dtype_info(type).name);
  tensors_.push_back(Tensor{name, type, std::move(ne), {}, *nbytes, std::move(produce)});
}

Writer Writer::copy_of(const File& f) {
  Writer w;
  w.kv_ = f.metadata();
  w.tensors_.reserve(f.tensors().size());
  for (const TensorInfo& t : f.tensors())
    w.tensors_.push_back(Tensor{t.name, t.dtype, t.ne, std::vector<uint8_t>(t.data, t.data + t.nbytes), t.nbytes, nullptr});
  return w;
}

void Writer::emit(const std::function<void(const void*, size_t)>& out) const {
  uint64_t alignment = kDefaultAlignment;
  for (const auto& [key, v] : kv_) {
    check_value(v, key, 0);
    if (key == "general.alignment") {
      if (v.type != ValueType::U32 || v.u == 0 || !std::has_single_bit(v.u))
        fail("Writer: general.alignment must be a u32 nonzero power of two");
      alignment = v.u;
    }
  }

  Buffer meta;
  meta.put<uint32_t>(0x46554747);  // "GGUF"
  meta.put<uint32_t>(kVersion);
  meta.put<uint64_t>(tensors_.size());
  meta.put<uint64_t>(kv_.size());
  for (const auto& [key, v] : kv_) {
    meta.put_string(key);
    meta.put<uint32_t>(static_cast<uint32_t>(v.type));
    meta.put_value(v);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    meta.put_string(t.name);
    meta.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) meta.put<uint64_t>(static_cast<uint64_t>(d));
    meta.put<uint32_t>(static_cast<uint32_t>(dtype_info(t.type).ggml_type));
    meta.put<uint64_t>(offset);
    offset = align_up(offset + t.nbytes, alignment);
  }
  // Vocab-only files end right after the tensor infos, as llama.cpp's converters write them.
  if (!tensors_.empty()) meta.pad_to(alignment);
  out(meta.bytes().data(), meta.bytes().size());

  const std::vector<uint8_t> zeros(alignment, 0);
  for (const Tensor& t : tensors_) {
    if (t.produce) {
      uint64_t got = 0;
      t.produce([&](const void* p, size_t n) {
        if (n > t.nbytes - got)
          fail("Writer: tensor '{}': producer gave more than the {} bytes of a {} tensor of this shape", t.name,
               t.nbytes, dtype_info(t.type).name);
        got += n;
        if (n) out(p, n);
      });
      if (got != t.nbytes)
        fail("Writer: tensor '{}': producer gave {} bytes, expected {}", t.name, got, t.nbytes);
    } else {
      out(t.data.data(), t.data.size());
    }
    out(zeros.data(), align_up(t.nbytes, alignment) - t.nbytes);
  }
}

std::vector<uint8_t> Writer::to_bytes() const {
  std::vector<uint8_t> r;
  emit([&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    r.insert(r.end(), b, b + n);
  });
  return r;
}

void Writer::write(const std::string& path) const {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fail("{}: cannot open for writing: {}", path, std::strerror(errno));
  try {
    emit([&](const void* p, size_t n) {
      if (n && std::fwrite(p, 1, n, f) != n) fail("{}: write failed: {}", path, std::strerror(errno));
    });
  } catch (...) {
    std::fclose(f);
    std::remove(path.c_str());  // never leave a truncated file behind
    throw;
  }
  if (std::fclose(f) != 0) {
    int e = errno;
    std::remove(path.c_str());
    fail("{}: write failed: {}", path, std::strerror(e));
  }
}

}  // namespace nibble::gguf
