// Counts heap allocations per thread, for tests that prove a hot path
// allocates nothing. The test binary defines malloc and friends (see
// allocation_counter.c); they count, then forward to glibc's allocator.
#ifndef PROXENOS_ALLOCATION_COUNTER_H
#define PROXENOS_ALLOCATION_COUNTER_H

#include <stdint.h>

/// Allocations (malloc, calloc, realloc, memalign, aligned_alloc,
/// posix_memalign) made by the calling thread since it started.
uint64_t allocation_counter_thread_total(void);

#endif
