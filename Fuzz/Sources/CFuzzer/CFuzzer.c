// The header declares libFuzzer's driver, which `-sanitize=fuzzer` links in; nothing is defined here.
#include "CFuzzer.h"
