// libFuzzer's entry for programs with a main of their own (LLVM >= 11): runs the fuzzing loop
// with `argv`'s options and corpus, calling `callback` on every input. Linked in by
// -sanitize=fuzzer; declared here because SwiftPM gives every executable its own main.
#ifndef RINGFENCE_CFUZZDRIVER_H
#define RINGFENCE_CFUZZDRIVER_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
