#include "common.h"
namespace dmd {
void registerLPIPS(Napi::Env, Exports) {}
void registerHeads(Napi::Env, Exports) {}
}
