#ifndef TRIBUTARY_CMAXMINDDB_SHIM_H
#define TRIBUTARY_CMAXMINDDB_SHIM_H
#include <maxminddb.h>
#endif
