#ifndef C_HEAP_IN_USE_H
#define C_HEAP_IN_USE_H
#include <malloc.h>
#include <stddef.h>

/// Bytes the C heap has handed out and not taken back (glibc's mallinfo2), for tests that count
/// what a piece of work leaves behind.
static inline size_t c_heap_in_use(void) { return mallinfo2().uordblks; }

#endif
