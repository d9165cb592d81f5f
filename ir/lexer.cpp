#include "ir/lexer.h"

#include <cctype>

#include <fmt/format.h>

#include "support/error.h"

namespace nibble {

static bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
static bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; }
static bool symbol_char(char c) { return ident_char(c) || c == '-' || c == '$'; }

void Lexer::error(int line, int col, const std::string& what) const { fail("{}:{}:{}: {}", file_, line, col, what); }

void Lexer::advance() {
  if (src_[pos_] == '\n') {
    ++line_;
    col_ = 1;
  } else {
    ++col_;
  }
  ++pos_;
}

std::string Lexer::read_quoted(int line, int col) {
  advance();  // opening quote
  std::string s;
  while (true) {
    if (pos_ >= src_.size() || peek() == '\n') error(line, col, "unterminated string");
    char c = peek();
    advance();
    if (c == '"') return s;
    if (c != '\\') {
      s += c;
      continue;
    }
    char e = peek();
    if (pos_ >= src_.size()) error(line, col, "unterminated string");
    advance();
    if (e == 'n') s += '\n';
    else if (e == 't') s += '\t';
    else if (e == '"' || e == '\\') s += e;
    else if (e == 'x') {
      int v = 0;
      for (int k = 0; k < 2; ++k) {
        char h = peek();
        if (!std::isxdigit(static_cast<unsigned char>(h))) error(line_, col_, "expected two hex digits after \\x");
        v = v * 16 + (std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : std::tolower(h) - 'a' + 10);
        advance();
      }
      s += char(v);
    } else {
      error(line_, col_ - 1, fmt::format("unknown escape '\\{}' in string", e));
    }
  }
}

Token Lexer::next() {
  // Skip whitespace and // comments.
  while (pos_ < src_.size()) {
    char c = peek();
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      advance();
    } else if (c == '/' && peek(1) == '/') {
      while (pos_ < src_.size() && peek() != '\n') advance();
    } else {
      break;
    }
  }
  Token t;
  t.line = line_;
  t.col = col_;
  if (pos_ >= src_.size()) return t;
  char c = peek();
  auto single = [&](Tok k) {
    advance();
    t.kind = k;
    t.text = std::string(1, c);
    return t;
  };
  switch (c) {
    case '(': return single(Tok::LParen);
    case ')': return single(Tok::RParen);
    case '{': return single(Tok::LBrace);
    case '}': return single(Tok::RBrace);
    case '[': return single(Tok::LBracket);
    case ']': return single(Tok::RBracket);
    case ',': return single(Tok::Comma);
    case ':': return single(Tok::Colon);
    case '=': return single(Tok::Equal);
    default: break;
  }
  if (c == '-' && peek(1) == '>') {
    advance();
    advance();
    t.kind = Tok::Arrow;
    t.text = "->";
    return t;
  }
  if (c == '"') {
    t.kind = Tok::String;
    t.text = read_quoted(t.line, t.col);
    return t;
  }
  if (c == '%' || c == '@') {
    advance();
    t.kind = c == '%' ? Tok::ValueName : Tok::Symbol;
    if (c == '@' && peek() == '"') {
      t.text = read_quoted(line_, col_);
      if (t.text.empty()) error(t.line, t.col, "empty symbol name");
      return t;
    }
    while (pos_ < src_.size() && (c == '%' ? ident_char(peek()) : symbol_char(peek()))) {
      t.text += peek();
      advance();
    }
    if (t.text.empty()) error(t.line, t.col, fmt::format("expected a name after '{}'", c));
    return t;
  }
  if (std::isdigit(static_cast<unsigned char>(c)) || ((c == '-' || c == '+') && (std::isdigit(static_cast<unsigned char>(peek(1))) || peek(1) == 'i' || peek(1) == 'n'))) {
    std::string s;
    if (c == '-' || c == '+') {
      s += c;
      advance();
    }
    bool is_float = false;
    while (pos_ < src_.size()) {
      char d = peek();
      if (std::isalnum(static_cast<unsigned char>(d)) || d == '.') {
        if (d == '.' || d == 'e' || d == 'E' || std::isalpha(static_cast<unsigned char>(d))) is_float = true;
        s += d;
        advance();
        if ((d == 'e' || d == 'E') && (peek() == '-' || peek() == '+')) {
          s += peek();
          advance();
        }
      } else {
        break;
      }
    }
    t.kind = is_float ? Tok::Float : Tok::Int;
    t.text = s;
    return t;
  }
  if (ident_start(c)) {
    while (pos_ < src_.size() && ident_char(peek())) {
      t.text += peek();
      advance();
    }
    t.kind = Tok::Ident;
    return t;
  }
  if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
    error(t.line, t.col, fmt::format("unexpected byte 0x{:02x}", static_cast<unsigned char>(c)));
  error(t.line, t.col, fmt::format("unexpected character '{}'", c));
}

const char* tok_name(Tok t) {
  switch (t) {
    case Tok::End: return "end of input";
    case Tok::Ident: return "identifier";
    case Tok::ValueName: return "%value";
    case Tok::Symbol: return "@symbol";
    case Tok::Int: return "integer";
    case Tok::Float: return "float";
    case Tok::String: return "string";
    case Tok::LParen: return "'('";
    case Tok::RParen: return "')'";
    case Tok::LBrace: return "'{'";
    case Tok::RBrace: return "'}'";
    case Tok::LBracket: return "'['";
    case Tok::RBracket: return "']'";
    case Tok::Comma: return "','";
    case Tok::Colon: return "':'";
    case Tok::Equal: return "'='";
    case Tok::Arrow: return "'->'";
  }
  return "?";
}

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::End: return "end of input";
    case Tok::ValueName: return "'%" + t.text + "'";
    case Tok::Symbol: return "'@" + t.text + "'";
    case Tok::String: return "a string";
    default: return "'" + t.text + "'";
  }
}

}  // namespace nibble
