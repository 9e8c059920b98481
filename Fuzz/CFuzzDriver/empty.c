// Only the declaration in include/CFuzzDriver.h: libFuzzer defines it.
