// Shared helpers for the IR tests: parse/verify shorthands and error-message matchers.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "support/error.h"

namespace nibble::testing {

// The message of the nibble::Error `f` throws; fails the test (and returns "") when it throws
// nothing or something else.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-nibble::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

inline std::string parse_error(const std::string& text) {
  return error_of([&] { parse_module(text, "t.nir"); });
}

inline std::unique_ptr<Module> parse(const std::string& text) { return parse_module(text, "t.nir"); }

// Verifier problems of a module given as text (which must parse).
inline std::vector<std::string> verify_text(const std::string& text) { return verify(*parse(text)); }

// A module with one function `@f(args) -> (type)` whose body is `%r = op : type; return %r`,
// after the module-level declarations in `decls`. Ops start at line 3 + decl lines, col 10.
inline std::string one_op(const std::string& args, const std::string& op, const std::string& type,
                          const std::string& decls = "") {
  return "module @m {\n" + decls + "  func @f(" + args + ") -> (" + type + ") {\n    %r = " + op + " : " + type +
         "\n    return %r\n  }\n}\n";
}

}  // namespace nibble::testing
