#include "ir/parser.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>

#include "ir/lexer.h"
#include "ir/op_registry.h"
#include "support/error.h"

namespace nibble {

namespace {

// Dims beyond this are surely a typo or an attack: keep products far from int64 overflow.
constexpr int64_t kMaxDim = int64_t(1) << 40;
constexpr int kMaxRank = 8;

class Parser {
 public:
  Parser(std::string_view text, const std::string& file) : lex_(text, file) { tok_ = lex_.next(); }

  std::unique_ptr<Module> parse() {
    auto m = std::make_unique<Module>();
    expect_keyword("module");
    m->name = expect(Tok::Symbol, "a module name (@name)").text;
    if (is_keyword("attributes")) {
      take();
      m->attrs = parse_attr_dict();
    }
    expect(Tok::LBrace, "'{' to open the module body");
    while (tok_.kind != Tok::RBrace) {
      if (is_keyword("weight")) {
        Token kw = take();
        WeightDecl w;
        w.loc = {kw.line, kw.col};
        w.name = expect(Tok::Symbol, "a weight name (@name)").text;
        expect(Tok::Colon, "':' before the weight type");
        w.type = parse_type();
        if (tok_.kind == Tok::LBrace) w.attrs = parse_attr_dict();
        m->weights.push_back(std::move(w));
      } else if (is_keyword("state")) {
        Token kw = take();
        StateDecl s;
        s.loc = {kw.line, kw.col};
        s.name = expect(Tok::Symbol, "a state name (@name)").text;
        expect(Tok::Colon, "':' before the state type");
        s.type = parse_type();
        if (tok_.kind == Tok::LBrace) s.attrs = parse_attr_dict();
        m->states.push_back(std::move(s));
      } else if (is_keyword("func")) {
        parse_function(*m);
      } else {
        error_expected("'weight', 'state', 'func' or '}'");
      }
    }
    take();
    if (tok_.kind != Tok::End) error_expected("end of input after the module");
    return m;
  }

 private:
  [[noreturn]] void error_at(const Token& t, const std::string& what) {
    fail("{}:{}:{}: {}", lex_.file(), t.line, t.col, what);
  }
  [[noreturn]] void error_expected(const std::string& what) {
    error_at(tok_, fmt::format("expected {}, got {}", what, describe(tok_)));
  }
  Token take() {
    Token t = tok_;
    tok_ = lex_.next();
    return t;
  }
  Token expect(Tok k, const std::string& what) {
    if (tok_.kind != k) error_expected(what);
    return take();
  }
  bool is_keyword(std::string_view kw) const { return tok_.kind == Tok::Ident && tok_.text == kw; }
  void expect_keyword(std::string_view kw) {
    if (!is_keyword(kw)) error_expected(fmt::format("'{}'", kw));
    take();
  }

  int64_t parse_int_token(const Token& t) {
    int64_t v = 0;
    const char* b = t.text.data();
    const char* e = b + t.text.size();
    if (*b == '+') ++b;
    auto r = std::from_chars(b, e, v);
    if (r.ec == std::errc::result_out_of_range) error_at(t, fmt::format("integer {} is out of range", t.text));
    if (r.ec != std::errc() || r.ptr != e) error_at(t, fmt::format("malformed integer '{}'", t.text));
    return v;
  }

  double parse_float_token(const Token& t) {
    std::string s = t.text;
    if (s == "nan" || s == "+nan" || s == "-nan") return std::nan("");
    if (s == "inf" || s == "+inf") return INFINITY;
    if (s == "-inf") return -INFINITY;
    double v = 0;
    const char* b = s.data();
    if (*b == '+') ++b;
    auto r = std::from_chars(b, s.data() + s.size(), v);
    if (r.ec == std::errc::result_out_of_range) error_at(t, fmt::format("float {} is out of range", t.text));
    if (r.ec != std::errc() || r.ptr != s.data() + s.size()) error_at(t, fmt::format("malformed number '{}'", t.text));
    return v;
  }

  TensorType parse_type() {
    Token t = expect(Tok::Ident, "an element type (f32, f16, q4_0, ...)");
    auto dt = dtype_from_name(t.text);
    if (!dt) error_at(t, fmt::format("unknown element type '{}'", t.text));
    TensorType type;
    type.dtype = *dt;
    expect(Tok::LBracket, "'[' after the element type");
    int64_t elements = 1;
    while (tok_.kind != Tok::RBracket) {
      if (!type.dims.empty()) expect(Tok::Comma, "',' or ']' in the dims");
      if (tok_.kind == Tok::Int) {
        Token d = take();
        int64_t v = parse_int_token(d);
        if (v < 0 || v > kMaxDim) error_at(d, fmt::format("dim {} is out of range [0, 2^40]", d.text));
        // Bound the product of the non-zero dims too, so element counts never overflow int64.
        if (v > 0 && elements > kMaxDim / v) error_at(d, "type has more than 2^40 elements");
        if (v > 0) elements *= v;
        type.dims.emplace_back(v);
      } else if (tok_.kind == Tok::Ident) {
        type.dims.push_back(Dim::sym(take().text));
      } else {
        error_expected("a dim (an integer or a symbol like n_tokens)");
      }
      if (type.dims.size() > size_t(kMaxRank)) error_at(tok_, fmt::format("rank exceeds {}", kMaxRank));
    }
    take();
    return type;
  }

  Attribute parse_attr_value() {
    Token t = take();
    switch (t.kind) {
      case Tok::Int: return parse_int_token(t);
      case Tok::Float: return parse_float_token(t);
      case Tok::String: return t.text;
      case Tok::Symbol: return SymbolRef{t.text};
      case Tok::Ident:
        if (t.text == "true") return true;
        if (t.text == "false") return false;
        if (t.text == "nan" || t.text == "inf") return parse_float_token(t);
        break;
      case Tok::LBracket: {
        std::vector<int64_t> v;
        while (tok_.kind != Tok::RBracket) {
          if (!v.empty()) expect(Tok::Comma, "',' or ']' in the integer array");
          v.push_back(parse_int_token(expect(Tok::Int, "an integer")));
        }
        take();
        return v;
      }
      default: break;
    }
    error_at(t, fmt::format("expected an attribute value (integer, float, true/false, string, @symbol or [integers]), got {}",
                            describe(t)));
  }

  Attrs parse_attr_dict() {
    expect(Tok::LBrace, "'{' to open attributes");
    Attrs a;
    while (tok_.kind != Tok::RBrace) {
      if (!a.empty()) expect(Tok::Comma, "',' or '}' in the attributes");
      Token key = expect(Tok::Ident, "an attribute name");
      if (a.has(key.text)) error_at(key, fmt::format("attribute '{}' given twice", key.text));
      expect(Tok::Equal, "'=' after the attribute name");
      a.set(key.text, parse_attr_value());
    }
    take();
    return a;
  }

  void parse_function(Module& m) {
    Token kw = take();
    Function* f = m.add_function(expect(Tok::Symbol, "a function name (@name)").text);
    f->loc = {kw.line, kw.col};
    values_.clear();
    expect(Tok::LParen, "'(' to open the arguments");
    while (tok_.kind != Tok::RParen) {
      if (!f->args.empty()) expect(Tok::Comma, "',' or ')' in the arguments");
      Token name = expect(Tok::ValueName, "an argument (%name)");
      expect(Tok::Colon, "':' after the argument name");
      Value* v = f->add_arg(name.text, parse_type());
      define(name, v);
    }
    take();
    expect(Tok::Arrow, "'->' before the result types");
    expect(Tok::LParen, "'(' to open the result types");
    std::vector<std::pair<Token, TensorType>> result_types;
    while (tok_.kind != Tok::RParen) {
      if (!result_types.empty()) expect(Tok::Comma, "',' or ')' in the result types");
      Token at = tok_;
      result_types.emplace_back(at, parse_type());
    }
    take();
    expect(Tok::LBrace, "'{' to open the function body");
    while (!is_keyword("return")) parse_op(*f);
    take();
    std::vector<Token> result_tokens;
    do {
      if (!result_tokens.empty()) take();
      result_tokens.push_back(tok_);
      f->results.push_back(use(expect(Tok::ValueName, "a returned value (%name)")));
    } while (tok_.kind == Tok::Comma);
    if (result_tokens.size() != result_types.size())
      error_at(result_tokens[0], fmt::format("returns {} values but the signature declares {}", result_tokens.size(),
                                             result_types.size()));
    for (size_t i = 0; i < result_types.size(); ++i)
      if (f->results[i]->type != result_types[i].second)
        error_at(result_tokens[i], fmt::format("returned value has type {} but the signature declares {}",
                                               f->results[i]->type.str(), result_types[i].second.str()));
    expect(Tok::RBrace, "'}' to close the function");
  }

  void parse_op(Function& f) {
    Token name = expect(Tok::ValueName, "an op result (%name = ...) or 'return'");
    expect(Tok::Equal, "'=' after the result name");
    Token opname = expect(Tok::Ident, "an op name");
    const OpDef* def = find_op(opname.text);
    if (!def) error_at(opname, fmt::format("unknown op '{}' (nibble ir --list-ops lists them)", opname.text));
    expect(Tok::LParen, "'(' to open the operands");
    std::vector<Value*> operands;
    while (tok_.kind != Tok::RParen) {
      if (!operands.empty()) expect(Tok::Comma, "',' or ')' in the operands");
      operands.push_back(use(expect(Tok::ValueName, "an operand (%name)")));
    }
    take();
    Attrs attrs;
    if (tok_.kind == Tok::LBrace) attrs = parse_attr_dict();
    expect(Tok::Colon, "':' before the result type");
    TensorType type = parse_type();
    auto op = std::make_unique<Op>(def, std::move(operands), std::move(type), std::move(attrs));
    op->loc = {opname.line, opname.col};
    op->name = name.text;
    Op* p = f.append(std::move(op));
    define(name, p);
  }

  void define(const Token& name, Value* v) {
    if (!values_.emplace(name.text, v).second) error_at(name, fmt::format("%{} is defined twice", name.text));
  }
  Value* use(const Token& name) {
    auto it = values_.find(name.text);
    if (it == values_.end()) error_at(name, fmt::format("use of undefined value %{}", name.text));
    return it->second;
  }

  Lexer lex_;
  Token tok_;
  std::unordered_map<std::string, Value*> values_;
};

}  // namespace

std::unique_ptr<Module> parse_module(std::string_view text, const std::string& file_name) {
  return Parser(text, file_name).parse();
}

std::unique_ptr<Module> parse_module_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_module(ss.str(), path);
}

}  // namespace nibble
