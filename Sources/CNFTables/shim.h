#ifndef RINGFENCE_CNFTABLES_SHIM_H
#define RINGFENCE_CNFTABLES_SHIM_H
#include <nftables/libnftables.h>
#endif
