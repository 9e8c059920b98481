#ifndef RINGFENCE_CZEROMQ_SHIM_H
#define RINGFENCE_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
