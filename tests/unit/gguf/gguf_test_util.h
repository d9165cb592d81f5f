// Helpers for the GGUF tests: a little-endian byte builder for hand-made (often broken) files, and
// an expectation that a call throws nibble::Error mentioning given fragments.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "frontends/gguf/gguf.h"
#include "support/error.h"

namespace nibble::gguf::test {

struct Bytes {
  std::vector<uint8_t> b;

  template <typename T>
  Bytes& put(T v) {
    size_t at = b.size();
    b.resize(at + sizeof v);
    std::memcpy(b.data() + at, &v, sizeof v);
    return *this;
  }
  Bytes& u8(uint8_t v) { return put(v); }
  Bytes& u32(uint32_t v) { return put(v); }
  Bytes& u64(uint64_t v) { return put(v); }
  Bytes& str(std::string_view s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& pad(size_t align) {
    b.resize((b.size() + align - 1) / align * align, 0);
    return *this;
  }
  Bytes& zeros(size_t n) {
    b.resize(b.size() + n, 0);
    return *this;
  }
  size_t size() const { return b.size(); }

  // Common pieces.
  static Bytes header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    Bytes r;
    r.u32(0x46554747).u32(version).u64(n_tensors).u64(n_kv);
    return r;
  }
  Bytes& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(4).u32(v); }
  Bytes& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
};

// Parses a private exact-size copy, so ASan flags any read past the end.
inline std::unique_ptr<File> parse_copy(const std::vector<uint8_t>& bytes, size_t n, std::vector<uint8_t>& keep,
                                        const std::string& name = "mem.gguf") {
  keep.assign(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
  return File::parse(keep.empty() ? nullptr : keep.data(), keep.size(), name);
}

// Runs f, expecting nibble::Error whose message contains every fragment. Returns the message.
template <typename F>
std::string expect_error(F&& f, std::vector<std::string> fragments) {
  try {
    f();
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const std::string& frag : fragments) EXPECT_NE(msg.find(frag), std::string::npos) << "missing '" << frag << "' in: " << msg;
    return msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected nibble::Error, got std::exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected nibble::Error, nothing was thrown";
  return {};
}

inline std::string expect_parse_error(const Bytes& b, std::vector<std::string> fragments) {
  std::vector<uint8_t> keep;
  return expect_error([&] { parse_copy(b.b, b.size(), keep); }, std::move(fragments));
}

}  // namespace nibble::gguf::test
