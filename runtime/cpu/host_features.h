// The ISA extensions of the CPU this process runs on, read with cpuid (no compiler needed): what a
// loaded plan's object code may use. Names are LLVM's feature names ("avx2", "avx512vnni", ...).
#pragma once
#include <set>
#include <string>

namespace nibble::rt {

// The features this runtime can detect. A plan's required features outside this set are not
// checked (they are system-level features the kernels do not use: cx16, xsave, ...).
const std::set<std::string>& checkable_cpu_features();
// The detected subset of checkable_cpu_features() (empty off x86-64). AVX and AVX-512 count only
// when the OS saves their registers (XGETBV).
std::set<std::string> host_cpu_features();

}  // namespace nibble::rt
