// CUDA queries: availability, device count, synchronisation, caching-allocator statistics.
#ifdef DMD_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "common.h"

namespace dmd {

namespace {

int deviceIndexArg(const Napi::CallbackInfo& info, size_t i) {
  int64_t idx = intArgOr(info, i, 0);
  int64_t n = static_cast<int64_t>(torch::cuda::device_count());
  if (!torch::cuda::is_available()) throwType("CUDA is not available on this machine (or this build of dmd-torch is CPU-only)");
  if (idx < 0 || idx >= n) throwRange("CUDA device index " + std::to_string(idx) + " out of range (0.." + std::to_string(n - 1) + ")");
  return static_cast<int>(idx);
}

Napi::Value IsAvailable(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), torch::cuda::is_available()); }
Napi::Value DeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(torch::cuda::is_available() ? torch::cuda::device_count() : 0));
}
Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  torch::cuda::synchronize(deviceIndexArg(info, 0));
  return info.Env().Undefined();
}
Napi::Value ManualSeedAll(const Napi::CallbackInfo& info) {
  int64_t s = intArg(info, 0);
  if (s < 0) throwRange("seed must be non-negative");
  torch::cuda::manual_seed_all(static_cast<uint64_t>(s));
  return info.Env().Undefined();
}

// cudaMemoryStats(device) -> {allocated, peakAllocated, reserved, peakReserved} in bytes
Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  int dev = deviceIndexArg(info, 0);
  Napi::Object o = Napi::Object::New(info.Env());
#ifdef DMD_WITH_CUDA
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(dev));
  // index 0 is the aggregate over small and large pools
  o.Set("allocated", static_cast<double>(stats.allocated_bytes[0].current));
  o.Set("peakAllocated", static_cast<double>(stats.allocated_bytes[0].peak));
  o.Set("reserved", static_cast<double>(stats.reserved_bytes[0].current));
  o.Set("peakReserved", static_cast<double>(stats.reserved_bytes[0].peak));
#else
  (void)dev;
#endif
  return o;
}

Napi::Value ResetPeak(const Napi::CallbackInfo& info) {
  int dev = deviceIndexArg(info, 0);
#ifdef DMD_WITH_CUDA
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(dev));
#else
  (void)dev;
#endif
  return info.Env().Undefined();
}

Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
#ifdef DMD_WITH_CUDA
  if (torch::cuda::is_available()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  return info.Env().Undefined();
}

}  // namespace

void registerCuda(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "cudaIsAvailable", IsAvailable);
  DMD_EXPORT(exports, env, "cudaDeviceCount", DeviceCount);
  DMD_EXPORT(exports, env, "cudaSynchronize", Synchronize);
  DMD_EXPORT(exports, env, "cudaManualSeedAll", ManualSeedAll);
  DMD_EXPORT(exports, env, "cudaMemoryStats", MemoryStats);
  DMD_EXPORT(exports, env, "cudaResetPeak", ResetPeak);
  DMD_EXPORT(exports, env, "cudaEmptyCache", EmptyCache);
}

}  // namespace dmd
