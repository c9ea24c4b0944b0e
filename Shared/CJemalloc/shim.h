#ifndef TRIBUTARY_CJEMALLOC_SHIM_H
#define TRIBUTARY_CJEMALLOC_SHIM_H
#include <stddef.h>

/// jemalloc's control interface (declared here rather than through <jemalloc/jemalloc.h>,
/// whose malloc and free would clash with libc's in Swift). Linking the library is what
/// makes jemalloc every daemon's allocator; this is the one function Swift calls.
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
#endif
