// nibble: the command-line driver. Errors print "nibble: error: ..." and exit non-zero.
#include <cstdio>
#include <exception>

#include <fmt/format.h>

#include "support/error.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"nibble: a compute-graph compiler for quantized LLM inference"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "nibble 0.1");
  nibble::tools::add_ir_command(app);
  nibble::tools::add_tokenize_command(app);
  nibble::tools::add_generate_command(app);
  nibble::tools::add_logits_command(app);
  nibble::tools::add_perplexity_command(app);
  nibble::tools::add_bench_command(app);
  nibble::tools::add_quantize_command(app);
  nibble::tools::add_synth_command(app);
  nibble::tools::add_devices_command(app);
  nibble::tools::add_compile_command(app);
  nibble::tools::add_inspect_command(app);
  nibble::tools::add_tune_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message; its codes (104, 105, ...) mean "bad arguments", which is 1 here as
    // for every other error. --help and --version stay 0.
    return app.exit(e) == 0 ? 0 : 1;
  } catch (const nibble::Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "nibble: error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "nibble: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "nibble: internal error: {}\n", e.what());
    return 2;
  }
  return 0;
}
