// The process entry point of luigi-fuzz. SwiftPM links an executable with
// `main` aliased to `luigi_fuzz_main`; here it hands over to libFuzzer's
// driver, which calls LLVMFuzzerInitialize / LLVMFuzzerTestOneInput
// (fuzz/Driver/Main.swift).
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int luigi_fuzz_main(int argc, char **argv) {
    return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
}
