// nibble::Error: the one exception type for bad input (files, IR text, options).
// Its message already names where (file, offset or line:col) and what was expected.
#pragma once
#include <fmt/format.h>
#include <stdexcept>
#include <string>

namespace nibble {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace nibble
