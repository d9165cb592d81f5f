# lit configuration for nibble's FileCheck tests (MLIR style: `// RUN:` lines in .nir/.test files).
# Run through ctest (`ctest -R lit`), or by hand:
#   python3 /usr/lib/llvm-19/build/utils/lit/lit.py -sv tests/lit --param nibble=build/bin/nibble
import os
import tempfile

import lit.formats

config.name = "nibble"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".nir", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
# Output/ (%t files) goes to the build tree, never the source tree.
config.test_exec_root = lit_config.params.get(
    "exec_root", os.path.join(tempfile.gettempdir(), "nibble-lit"))

llvm_bin = lit_config.params.get("llvm_bin", "/usr/lib/llvm-19/bin")
nibble = lit_config.params.get("nibble")
if not nibble:
    lit_config.fatal("pass --param nibble=/path/to/nibble")
shared = lit_config.params.get("shared", os.path.join(config.test_source_root, "..", "..", "..", "shared"))

# Tool names are matched as whole words at the start of a command, so paths and check text
# containing them are left alone. %shared comes before lit's own %s.
def tool(name):
    return r"(?<![\w./%-])" + name + r"(?![\w.-])"

config.substitutions.append(("%shared", os.path.abspath(shared)))
config.substitutions.append((tool("nibble"), nibble))
config.substitutions.append((tool("FileCheck"), os.path.join(llvm_bin, "FileCheck")))
config.substitutions.append((tool("not"), os.path.join(llvm_bin, "not")))
for name in ["split-file", "count"]:
    config.substitutions.append((tool(name), os.path.join(llvm_bin, name)))

# JIT-compiled kernels are cached here rather than in the user's ~/.cache/nibble.
config.environment["XDG_CACHE_HOME"] = os.path.join(config.test_exec_root, "xdg-cache")
# A Vulkan device (lavapipe in CI) enables the `vulkan` tests.
try:
    import subprocess
    out = subprocess.run([nibble, "devices"], capture_output=True, text=True, timeout=60).stdout
    if "vulkan:0" in out:
        config.available_features.add("vulkan")
except Exception:
    pass
