// Every error path of the lexer and parser, each with its exact "file:line:col: message".
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ir_test_util.h"

namespace nibble {
namespace {

using testing::parse_error;

struct ErrorCase {
  std::string text;
  std::string error;  // the whole message, "t.nir:line:col: ..."
};

void check_errors(const std::vector<ErrorCase>& cases) {
  for (const ErrorCase& c : cases) EXPECT_EQ(parse_error(c.text), c.error) << "input:\n" << c.text;
}

// A module whose function body is `body` (which starts on line 3, column 5).
std::string in_func(const std::string& body, const std::string& sig = "(%x: f32[4]) -> (f32[4])") {
  return "module @m {\n  func @f" + sig + " {\n    " + body + "\n  }\n}\n";
}

TEST(IrParserErrors, Lexer) {
  check_errors({
      {"module @m attributes {s = \"abc", "t.nir:1:27: unterminated string"},
      {"module @m attributes {s = \"abc\n\"} {}", "t.nir:1:27: unterminated string"},
      {"module @m attributes {s = \"abc\\", "t.nir:1:27: unterminated string"},
      {"module @m attributes {s = \"a\\x4\"} {}", "t.nir:1:32: expected two hex digits after \\x"},
      {"module @m attributes {s = \"a\\xg0\"} {}", "t.nir:1:31: expected two hex digits after \\x"},
      {"module @m attributes {s = \"a\\x", "t.nir:1:31: expected two hex digits after \\x"},
      {"module @m attributes {s = \"a\\q\"} {}", "t.nir:1:30: unknown escape '\\q' in string"},
      {"module @\"\" {}", "t.nir:1:8: empty symbol name"},
      {"module @\"ab", "t.nir:1:9: unterminated string"},
      {"module @ {}", "t.nir:1:8: expected a name after '@'"},
      {"module @m {\n  func @f(% : f32[4]", "t.nir:2:11: expected a name after '%'"},
      {"module @m {\x01}", "t.nir:1:12: unexpected byte 0x01"},
      {"module @m {\n\xff", "t.nir:2:1: unexpected byte 0xff"},
      {"module @m {#}", "t.nir:1:12: unexpected character '#'"},
      {"module @m { - }", "t.nir:1:13: unexpected character '-'"},
      {"module @m attributes {x = .5} {}", "t.nir:1:27: unexpected character '.'"},
      {"module @m {\t\r\n  ~", "t.nir:2:3: unexpected character '~'"},
  });
}

TEST(IrParserErrors, ModuleAndDeclarations) {
  check_errors({
      {"", "t.nir:1:1: expected 'module', got end of input"},
      {"// only a comment\n", "t.nir:2:1: expected 'module', got end of input"},
      {"modul @m {}", "t.nir:1:1: expected 'module', got 'modul'"},
      {"@m {}", "t.nir:1:1: expected 'module', got '@m'"},
      {"module m {}", "t.nir:1:8: expected a module name (@name), got 'm'"},
      {"module @m", "t.nir:1:10: expected '{' to open the module body, got end of input"},
      {"module @m [", "t.nir:1:11: expected '{' to open the module body, got '['"},
      {"module @m attributes", "t.nir:1:21: expected '{' to open attributes, got end of input"},
      {"module @m attributes (", "t.nir:1:22: expected '{' to open attributes, got '('"},
      {"module @m {", "t.nir:1:12: expected 'weight', 'state', 'func' or '}', got end of input"},
      {"module @m {\n  weights @w : f32[4]\n}", "t.nir:2:3: expected 'weight', 'state', 'func' or '}', got 'weights'"},
      {"module @m {\n  \"x\"\n}", "t.nir:2:3: expected 'weight', 'state', 'func' or '}', got a string"},
      {"module @m {\n  %x\n}", "t.nir:2:3: expected 'weight', 'state', 'func' or '}', got '%x'"},
      {"module @m {} module", "t.nir:1:14: expected end of input after the module, got 'module'"},
      {"module @m {}}", "t.nir:1:13: expected end of input after the module, got '}'"},
      {"module @m {\n  weight w : f32[4]\n}", "t.nir:2:10: expected a weight name (@name), got 'w'"},
      {"module @m {\n  weight @w f32[4]\n}", "t.nir:2:13: expected ':' before the weight type, got 'f32'"},
      {"module @m {\n  weight @w : f32[4] {offset = }\n}",
       "t.nir:2:32: expected an attribute value (integer, float, true/false, string, @symbol or [integers]), got '}'"},
      {"module @m {\n  state %s : f32[4]\n}", "t.nir:2:9: expected a state name (@name), got '%s'"},
      {"module @m {\n  state @s = f32[4]\n}", "t.nir:2:12: expected ':' before the state type, got '='"},
      {"module @m {\n  state @s : f32[4] {a = 1 b = 2}\n}",
       "t.nir:2:28: expected ',' or '}' in the attributes, got 'b'"},
  });
}

TEST(IrParserErrors, Types) {
  auto w = [](const std::string& type) { return "module @m {\n  weight @w : " + type + "\n}"; };
  check_errors({
      {w("[4]"), "t.nir:2:15: expected an element type (f32, f16, q4_0, ...), got '['"},
      {w("f33[4]"), "t.nir:2:15: unknown element type 'f33'"},
      {w("q4_0"), "t.nir:3:1: expected '[' after the element type, got '}'"},
      {w("f32(4)"), "t.nir:2:18: expected '[' after the element type, got '('"},
      {w("f32[4 4]"), "t.nir:2:21: expected ',' or ']' in the dims, got '4'"},
      {w("f32[4,]"), "t.nir:2:21: expected a dim (an integer or a symbol like n_tokens), got ']'"},
      {w("f32[,4]"), "t.nir:2:19: expected a dim (an integer or a symbol like n_tokens), got ','"},
      {w("f32[4.0]"), "t.nir:2:19: expected a dim (an integer or a symbol like n_tokens), got '4.0'"},
      {w("f32[\"n\"]"), "t.nir:2:19: expected a dim (an integer or a symbol like n_tokens), got a string"},
      {w("f32[4"), "t.nir:3:1: expected ',' or ']' in the dims, got '}'"},
      {w("f32[-1]"), "t.nir:2:19: dim -1 is out of range [0, 2^40]"},
      {w("f32[1099511627777]"), "t.nir:2:19: dim 1099511627777 is out of range [0, 2^40]"},
      {w("f32[99999999999999999999]"), "t.nir:2:19: integer 99999999999999999999 is out of range"},
      {w("f32[1048576, 1048577]"), "t.nir:2:28: type has more than 2^40 elements"},
      {w("f32[1,2,3,4,5,6,7,8,9]"), "t.nir:2:36: rank exceeds 8"},
      {w("f32[n,n,n,n,n,n,n,n,n]"), "t.nir:2:36: rank exceeds 8"},
  });
}

TEST(IrParserErrors, AttributeValues) {
  auto a = [](const std::string& value) { return "module @m attributes {k = " + value + "} {}"; };
  check_errors({
      {a("9223372036854775808"), "t.nir:1:27: integer 9223372036854775808 is out of range"},
      {a("-9223372036854775809"), "t.nir:1:27: integer -9223372036854775809 is out of range"},
      {a("[1, 99999999999999999999]"), "t.nir:1:31: integer 99999999999999999999 is out of range"},
      {a("1e400"), "t.nir:1:27: float 1e400 is out of range"},
      {a("-1e400"), "t.nir:1:27: float -1e400 is out of range"},
      {a("1.2.3"), "t.nir:1:27: malformed number '1.2.3'"},
      {a("0x10"), "t.nir:1:27: malformed number '0x10'"},
      {a("1e"), "t.nir:1:27: malformed number '1e'"},
      {a("-nope"), "t.nir:1:27: malformed number '-nope'"},
      {a("[1 2]"), "t.nir:1:30: expected ',' or ']' in the integer array, got '2'"},
      {a("[1, 2.5]"), "t.nir:1:31: expected an integer, got '2.5'"},
      {a("[[1]]"), "t.nir:1:28: expected an integer, got '['"},
      {a("[1,"), "t.nir:1:30: expected an integer, got '}'"},
      {a("maybe"), "t.nir:1:27: expected an attribute value (integer, float, true/false, string, @symbol or [integers]), "
                   "got 'maybe'"},
      {a("%v"), "t.nir:1:27: expected an attribute value (integer, float, true/false, string, @symbol or [integers]), "
                "got '%v'"},
      {"module @m attributes {k = 1, k = 2} {}", "t.nir:1:30: attribute 'k' given twice"},
      {"module @m attributes {k 1} {}", "t.nir:1:25: expected '=' after the attribute name, got '1'"},
      {"module @m attributes {1 = 1} {}", "t.nir:1:23: expected an attribute name, got '1'"},
      {"module @m attributes {k = 1,} {}", "t.nir:1:29: expected an attribute name, got '}'"},
      {"module @m attributes {k = 1", "t.nir:1:28: expected ',' or '}' in the attributes, got end of input"},
  });
}

TEST(IrParserErrors, Functions) {
  check_errors({
      {"module @m {\n  func f() -> () {", "t.nir:2:8: expected a function name (@name), got 'f'"},
      {"module @m {\n  func @f -> ()", "t.nir:2:11: expected '(' to open the arguments, got '->'"},
      {"module @m {\n  func @f(%a: f32[4] %b: f32[4])", "t.nir:2:22: expected ',' or ')' in the arguments, got '%b'"},
      {"module @m {\n  func @f(a: f32[4])", "t.nir:2:11: expected an argument (%name), got 'a'"},
      {"module @m {\n  func @f(%a f32[4])", "t.nir:2:14: expected ':' after the argument name, got 'f32'"},
      {"module @m {\n  func @f(%a: f32[4], %a: f32[4])", "t.nir:2:23: %a is defined twice"},
      {"module @m {\n  func @f() (f32[4])", "t.nir:2:13: expected '->' before the result types, got '('"},
      {"module @m {\n  func @f() -> f32[4]", "t.nir:2:16: expected '(' to open the result types, got 'f32'"},
      {"module @m {\n  func @f() -> (f32[4] f32[4])", "t.nir:2:24: expected ',' or ')' in the result types, got 'f32'"},
      {"module @m {\n  func @f() -> (f32[4]) return", "t.nir:2:25: expected '{' to open the function body, got 'return'"},
      {"module @m {\n  func @f() -> (f32[4]) {", "t.nir:2:26: expected an op result (%name = ...) or 'return', got end of input"},
      {in_func("return"), "t.nir:4:3: expected a returned value (%name), got '}'"},
      {in_func("return x"), "t.nir:3:12: expected a returned value (%name), got 'x'"},
      {in_func("return %x,"), "t.nir:4:3: expected a returned value (%name), got '}'"},
      {in_func("return %y"), "t.nir:3:12: use of undefined value %y"},
      {in_func("return %x, %x"), "t.nir:3:12: returns 2 values but the signature declares 1"},
      {in_func("return %x", "(%x: f32[4]) -> (f32[4], f32[4])"), "t.nir:3:12: returns 1 values but the signature declares 2"},
      {in_func("return %x, %x", "(%x: f32[4]) -> (f32[4], f16[4])"),
       "t.nir:3:16: returned value has type f32[4] but the signature declares f16[4]"},
      {"module @m {\n  func @f(%x: f32[4]) -> (f32[4]) {\n    return %x\n  ", "t.nir:4:3: expected '}' to close the function, got end of input"},
      {"module @m {\n  func @f(%x: f32[4]) -> (f32[4]) {\n    return %x %x\n  }\n}",
       "t.nir:3:15: expected '}' to close the function, got '%x'"},
  });
}

TEST(IrParserErrors, Ops) {
  check_errors({
      {in_func("silu(%x) : f32[4]"), "t.nir:3:5: expected an op result (%name = ...) or 'return', got 'silu'"},
      {in_func("%y silu(%x) : f32[4]"), "t.nir:3:8: expected '=' after the result name, got 'silu'"},
      {in_func("%y = %x"), "t.nir:3:10: expected an op name, got '%x'"},
      {in_func("%y = frobnicate(%x) : f32[4]"), "t.nir:3:10: unknown op 'frobnicate' (nibble ir --list-ops lists them)"},
      {in_func("%y = silu %x : f32[4]"), "t.nir:3:15: expected '(' to open the operands, got '%x'"},
      {in_func("%y = add(%x %x) : f32[4]"), "t.nir:3:17: expected ',' or ')' in the operands, got '%x'"},
      {in_func("%y = add(%x, x) : f32[4]"), "t.nir:3:18: expected an operand (%name), got 'x'"},
      {in_func("%y = add(%x, %z) : f32[4]"), "t.nir:3:18: use of undefined value %z"},
      {in_func("%y = silu(%y) : f32[4]"), "t.nir:3:15: use of undefined value %y"},  // no self-reference
      {in_func("%y = silu(%x) f32[4]"), "t.nir:3:19: expected ':' before the result type, got 'f32'"},
      {in_func("%y = silu(%x) {a = 1} {b = 2} : f32[4]"), "t.nir:3:27: expected ':' before the result type, got '{'"},
      {in_func("%y = silu(%x) :"), "t.nir:4:3: expected an element type (f32, f16, q4_0, ...), got '}'"},
      {in_func("%x = silu(%x) : f32[4]"), "t.nir:3:5: %x is defined twice"},
      {in_func("%y = silu(%x) : f32[4]\n    %y = silu(%x) : f32[4]"), "t.nir:4:5: %y is defined twice"},
  });
}

TEST(IrParserErrors, ValuesAreScopedToTheirFunction) {
  EXPECT_EQ(parse_error("module @m {\n  func @f(%x: f32[4]) -> (f32[4]) {\n    return %x\n  }\n"
                        "  func @g(%y: f32[4]) -> (f32[4]) {\n    return %x\n  }\n}"),
            "t.nir:6:12: use of undefined value %x");
}

TEST(IrParserErrors, FileNameIsTheOneGiven) {
  EXPECT_EQ(testing::error_of([] { parse_module("module", "dir/model.nir"); }),
            "dir/model.nir:1:7: expected a module name (@name), got end of input");
}

}  // namespace
}  // namespace nibble
