// Runtime settings and build facts: thread pools, versions, CUDA build flag.
#include "common.h"

namespace dmd {

namespace {

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = intArg(info, 0);
  if (n < 1 || n > 4096) throwRange("setNumThreads: n must be in [1, 4096]");
  at::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}
Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), at::get_num_threads()); }

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("torchVersion", std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH));
#ifdef DMD_WITH_CUDA
  o.Set("cuda", true);
#else
  o.Set("cuda", false);
#endif
  o.Set("sdpa", DMD_TORCH_AT_LEAST(2, 0));
  Napi::Object tf32 = Napi::Object::New(info.Env());
  tf32.Set("matmul", at::globalContext().allowTF32CuBLAS());
  tf32.Set("cudnn", at::globalContext().allowTF32CuDNN());
  o.Set("tf32", tf32);
  const std::vector<std::string> backends = distributedBackends();
  Napi::Array dist = Napi::Array::New(info.Env(), backends.size());
  for (size_t i = 0; i < backends.size(); ++i) dist.Set(static_cast<uint32_t>(i), backends[i]);
  o.Set("distributed", dist);
  o.Set("parallelInfo", at::get_parallel_info());
  return o;
}

}  // namespace

void registerRuntime(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "setNumThreads", SetNumThreads);
  DMD_EXPORT(exports, env, "getNumThreads", GetNumThreads);
  DMD_EXPORT(exports, env, "buildInfo", BuildInfo);
}

}  // namespace dmd
