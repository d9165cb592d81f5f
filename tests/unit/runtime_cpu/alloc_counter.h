// Counts global operator new calls in this test binary (alloc_counter.cpp replaces them).
#pragma once
#include <atomic>
#include <cstdint>

namespace nibble::rt::test {
extern std::atomic<int64_t> g_allocations;
}
