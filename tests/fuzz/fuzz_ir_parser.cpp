// libFuzzer harness for the IR text: parse, verify, print, re-parse, and run the cleanup passes.
// Bad input may only raise nibble::Error; anything else (another exception, a crash, a sanitizer
// report, a broken round trip) is a bug. NIBBLE_FUZZ_TARGET=cpu runs that target's pipeline instead
// of ref's.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "passes/pass.h"
#include "passes/pipeline.h"
#include "support/error.h"

namespace {

[[noreturn]] void bug(const char* what, const std::string& text) {
  std::fprintf(stderr, "fuzz_ir_parser: %s\n--- text ---\n%s\n", what, text.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<Module> m;
  try {
    m = parse_module(text, "fuzz.nir");
  } catch (const Error&) {
    return 0;  // rejected input: the expected outcome for most of it
  }
  // Whatever parses prints, and the printed text is a fixed point (verified or not).
  size_t problems = verify(*m).size();
  std::string printed = print_module(*m);
  std::unique_ptr<Module> back;
  try {
    back = parse_module(printed, "printed.nir");
  } catch (const Error& e) {
    bug(e.what(), printed);
  }
  if (print_module(*back) != printed) bug("print(parse(print(m))) != print(m)", printed);
  if (verify(*back).size() != problems) bug("verifier disagrees on the re-parsed module", printed);
  if (problems) return 0;
  // A verified module must survive its target's pipeline (each pass verifies after it runs).
  static const char* target = std::getenv("NIBBLE_FUZZ_TARGET") ? std::getenv("NIBBLE_FUZZ_TARGET") : "ref";
  try {
    PassOptions opts;
    opts.target = target;
    PassManager pm(opts);
    pm.add_pipeline(default_pipeline(target));
    pm.run(*m);
  } catch (const Error& e) {
    bug(e.what(), printed);
  }
  return 0;
}
