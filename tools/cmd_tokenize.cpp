// nibble tokenize: token ids of a text, as llama.cpp's tokenizer gives them.
#include <fmt/format.h>

#include "frontends/gguf/gguf.h"
#include "frontends/tokenizer/tokenizer.h"
#include "support/error.h"
#include "tools/commands.h"

namespace nibble::tools {

namespace {

struct TokenizeOptions {
  std::string model, text;
  bool no_special = false;
  bool parse_special = false;
  bool pieces = false;
};

void run_tokenize(const TokenizeOptions& o) {
  auto file = gguf::File::open(o.model);
  auto tok = Tokenizer::create(vocab_from_gguf(*file));
  std::vector<int32_t> ids = tok->encode(o.text, !o.no_special, o.parse_special);
  if (o.pieces) {
    for (int32_t id : ids) fmt::print("{:>6} -> '{}'\n", id, tok->token_to_piece(id));
  } else {
    fmt::print("{}\n", fmt::join(ids, " "));
  }
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* c = app.add_subcommand("tokenize", "Print the token ids of a text");
  c->add_option("model", o->model, "MODEL.gguf")->required();
  c->add_option("--text", o->text, "the text")->required();
  c->add_flag("--no-special", o->no_special, "do not add BOS/EOS");
  c->add_flag("--parse-special", o->parse_special, "match special token texts such as <s>");
  c->add_flag("--pieces", o->pieces, "print each id with its text");
  c->callback([o] { run_tokenize(*o); });
}

}  // namespace nibble::tools
