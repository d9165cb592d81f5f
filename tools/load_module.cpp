#include "tools/load_module.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "frontends/gguf/gguf.h"
#include "frontends/llama/llama_builder.h"
#include "ir/parser.h"
#include "ir/verifier.h"
#include "ir/weight_files.h"
#include "runtime/plan/plan_file.h"
#include "support/error.h"

namespace nibble::tools {

bool is_gguf_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open: {}", path, std::strerror(errno));
  char magic[4] = {};
  return in.read(magic, 4) && std::string(magic, 4) == "GGUF";
}

LoadedModel load_model(const std::string& path, const LoadOptions& opts) {
  LoadedModel lm;
  if (rt::PlanFile::has_magic(path)) {  // the final IR a plan was compiled to (nibble ir PLAN)
    auto pf = rt::PlanFile::open(path);
    lm.module = parse_module(pf->section_text("ir"), path + " (ir section)");
    verify_or_throw(*lm.module, path);
    return lm;
  }
  if (!is_gguf_file(path)) {
    if (path.ends_with(".gguf")) fail("{}: not a GGUF file (offset 0: expected the magic \"GGUF\")", path);
    lm.module = parse_module_file(path);
    verify_or_throw(*lm.module, path);
    bind_weight_files(*lm.module);
    return lm;
  }
  std::shared_ptr<const gguf::File> file = gguf::File::open(path);
  ModelBuildOptions bo;
  bo.n_ctx = opts.n_ctx;
  if (opts.kv_type == "f16") bo.kv_type = DType::F16;
  else if (opts.kv_type == "f32") bo.kv_type = DType::F32;
  else fail("unknown KV cache type '{}' (expected f16 or f32)", opts.kv_type);
  lm.tokenizer = Tokenizer::create(vocab_from_gguf(*file));
  lm.module = build_llama_module(file, bo);
  lm.gguf = file;
  return lm;
}

std::unique_ptr<Module> load_module(const std::string& path, const LoadOptions& opts) {
  return load_model(path, opts).module;
}

}  // namespace nibble::tools
