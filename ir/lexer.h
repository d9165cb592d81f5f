// Tokens of the textual IR, with line:col for error messages.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace nibble {

enum class Tok {
  End, Ident, ValueName, Symbol, Int, Float, String,
  LParen, RParen, LBrace, RBrace, LBracket, RBracket, Comma, Colon, Equal, Arrow,
};

struct Token {
  Tok kind = Tok::End;
  std::string text;  // identifier, name (without sigil), string contents, or number spelling
  int line = 1, col = 1;
};

class Lexer {
 public:
  Lexer(std::string_view src, std::string file) : src_(src), file_(std::move(file)) {}
  Token next();  // throws nibble::Error "file:line:col: ..." on a bad character or literal
  const std::string& file() const { return file_; }

 private:
  [[noreturn]] void error(int line, int col, const std::string& what) const;
  char peek(size_t k = 0) const { return pos_ + k < src_.size() ? src_[pos_ + k] : '\0'; }
  void advance();
  std::string read_quoted(int line, int col);
  std::string_view src_;
  std::string file_;
  size_t pos_ = 0;
  int line_ = 1, col_ = 1;
};

const char* tok_name(Tok t);
std::string describe(const Token& t);  // "'foo'", "end of input", ...

}  // namespace nibble
