#include "codegen/spirv/glsl_compiler.h"

#include <chrono>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include <glslang/Include/glslang_c_interface.h>
#include <glslang/Public/resource_limits_c.h>
#include <spirv-tools/libspirv.hpp>
#include <spirv-tools/optimizer.hpp>

#include "runtime/vulkan/plan.h"
#include "support/error.h"

namespace nibble::vk {

namespace {

std::mutex g_mutex;
std::unordered_map<std::string, std::vector<uint32_t>> g_cache;
GlslCacheStats g_stats;

void init_glslang() {
  static std::once_flag once;
  std::call_once(once, [] { glslang_initialize_process(); });
}

// The source with line numbers around the lines glslang's log names ("ERROR: 0:LINE: ...").
std::string excerpt(const std::string& source, const std::string& log) {
  std::vector<std::string> lines;
  std::istringstream in(source);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  std::string out;
  size_t pos = 0;
  int shown = 0;
  while ((pos = log.find("0:", pos)) != std::string::npos && shown < 3) {
    pos += 2;
    int line = std::atoi(log.c_str() + pos);
    if (line <= 0) continue;
    for (int l = std::max(1, line - 2); l <= std::min<int>(int(lines.size()), line + 2); ++l)
      out += fmt::format("{:5}{} {}\n", l, l == line ? ">" : ":", lines[size_t(l - 1)]);
    out += "      ...\n";
    ++shown;
  }
  return out;
}

std::vector<uint32_t> glslang_compile(const std::string& source, const std::string& name) {
  init_glslang();
  glslang_input_t in{};
  in.language = GLSLANG_SOURCE_GLSL;
  in.stage = GLSLANG_STAGE_COMPUTE;
  in.client = GLSLANG_CLIENT_VULKAN;
  in.client_version = GLSLANG_TARGET_VULKAN_1_2;
  in.target_language = GLSLANG_TARGET_SPV;
  in.target_language_version = GLSLANG_TARGET_SPV_1_5;
  in.code = source.c_str();
  in.default_version = 450;
  in.default_profile = GLSLANG_NO_PROFILE;
  in.messages = static_cast<glslang_messages_t>(GLSLANG_MSG_SPV_RULES_BIT | GLSLANG_MSG_VULKAN_RULES_BIT);
  in.resource = glslang_default_resource();
  glslang_shader_t* sh = glslang_shader_create(&in);
  if (!sh) fail("spirv: glslang could not create a shader for {}", name);
  struct Guard {
    glslang_shader_t* sh;
    glslang_program_t* prog = nullptr;
    ~Guard() {
      if (prog) glslang_program_delete(prog);
      glslang_shader_delete(sh);
    }
  } guard{sh};
  if (!glslang_shader_preprocess(sh, &in) || !glslang_shader_parse(sh, &in)) {
    std::string log = glslang_shader_get_info_log(sh);
    fail("spirv: GLSL of kernel {} does not compile:\n{}{}", name, log, excerpt(source, log));
  }
  guard.prog = glslang_program_create();
  glslang_program_add_shader(guard.prog, sh);
  if (!glslang_program_link(guard.prog, in.messages))
    fail("spirv: GLSL of kernel {} does not link:\n{}", name, glslang_program_get_info_log(guard.prog));
  glslang_program_SPIRV_generate(guard.prog, GLSLANG_STAGE_COMPUTE);
  const char* msgs = glslang_program_SPIRV_get_messages(guard.prog);
  if (msgs && *msgs) fail("spirv: SPIR-V generation for kernel {} reported:\n{}", name, msgs);
  std::vector<uint32_t> words(glslang_program_SPIRV_get_size(guard.prog));
  glslang_program_SPIRV_get(guard.prog, words.data());
  return words;
}

}  // namespace

std::string validate_spirv(const std::vector<uint32_t>& words) {
  spvtools::SpirvTools tools(SPV_ENV_VULKAN_1_2);
  std::string msgs;
  tools.SetMessageConsumer([&msgs](spv_message_level_t, const char*, const spv_position_t& p, const char* m) {
    msgs += fmt::format("  at word {}: {}\n", p.index, m);
  });
  if (tools.Validate(words)) return "";
  return msgs.empty() ? "invalid SPIR-V\n" : msgs;
}

uint32_t spirv_features(const std::vector<uint32_t>& words) {
  uint32_t f = 0;
  for (size_t i = 5; i < words.size();) {
    uint32_t len = words[i] >> 16, op = words[i] & 0xFFFF;
    if (len == 0) break;
    if (op == 17 && i + 1 < words.size()) {  // OpCapability
      switch (words[i + 1]) {
        case 9: f |= kFeatFloat16; break;               // Float16
        case 22: f |= kFeatInt16; break;                // Int16
        case 39: f |= kFeatInt8; break;                 // Int8
        case 4433: f |= kFeatStorage16; break;          // StorageBuffer16BitAccess
        case 4448: f |= kFeatStorage8; break;           // StorageBuffer8BitAccess
        case 61: case 63: f |= kFeatSubgroupArith; break;  // GroupNonUniform, ...Arithmetic
        case 6016: case 6017: case 6018: case 6019: f |= kFeatIntDot; break;  // DotProduct*
        default: break;
      }
    }
    i += len;
  }
  return f;
}

std::vector<uint32_t> compile_glsl(const std::string& source, const std::string& name, const GlslCompileOptions& o) {
  std::string key = std::string(o.optimize ? "O" : "-") + (o.validate ? "V" : "-") + source;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_cache.find(key);
    if (it != g_cache.end()) {
      ++g_stats.hits;
      return it->second;
    }
  }
  auto t0 = std::chrono::steady_clock::now();
  std::vector<uint32_t> words = glslang_compile(source, name);
  if (o.validate) {
    std::string err = validate_spirv(words);
    if (!err.empty()) fail("spirv: kernel {} (from glslang) fails validation:\n{}", name, err);
  }
  if (o.optimize) {
    spvtools::Optimizer opt(SPV_ENV_VULKAN_1_2);
    std::string msgs;
    opt.SetMessageConsumer([&msgs](spv_message_level_t level, const char*, const spv_position_t&, const char* m) {
      if (level <= SPV_MSG_ERROR) msgs += std::string(m) + "\n";
    });
    opt.RegisterPerformancePasses();
    std::vector<uint32_t> out;
    if (!opt.Run(words.data(), words.size(), &out)) fail("spirv: optimizing kernel {} failed:\n{}", name, msgs);
    words = std::move(out);
    if (o.validate) {
      std::string err = validate_spirv(words);
      if (!err.empty()) fail("spirv: kernel {} fails validation after optimization:\n{}", name, err);
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::lock_guard<std::mutex> lock(g_mutex);
  ++g_stats.compiled;
  g_stats.seconds += secs;
  g_cache.emplace(std::move(key), words);
  return words;
}

GlslCacheStats glsl_cache_stats() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_stats;
}

}  // namespace nibble::vk
