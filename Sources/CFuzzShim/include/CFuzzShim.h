#ifndef CFUZZSHIM_H
#define CFUZZSHIM_H
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's driver (compiler-rt, LLVM 11+), present only in binaries linked with
   -sanitize=fuzzer; closewaitd-fuzz calls it only when built that way (-D FUZZING). */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
#endif
