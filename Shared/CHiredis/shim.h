#ifndef TRIBUTARY_CHIREDIS_SHIM_H
#define TRIBUTARY_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <sys/time.h>

/// The context's error code (0 when healthy); a non-zero value means the context is dead.
static inline int tributary_redis_err(const redisContext *c) { return c->err; }

/// Builds a timeval from whole milliseconds (Swift cannot easily build one portably).
static inline struct timeval tributary_timeval_ms(long ms) {
    struct timeval tv;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return tv;
}
#endif
