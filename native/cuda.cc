// CUDA queries: availability, device count, synchronisation, caching-allocator statistics, TF32, determinism.
#include <torch/version.h>
#ifdef DMD_WITH_CUDA
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9)
// libtorch >= 2.9: the device-generic allocator interface, no CUDA toolkit header needed
#include <c10/core/CachingDeviceAllocator.h>
#define DMD_GENERIC_DEVICE_ALLOCATOR 1
#else
#include <c10/cuda/CUDACachingAllocator.h>
#endif
#include <cuda_runtime_api.h>
#endif

#include <cstdlib>

#include "common.h"

namespace dmd {

namespace {

int deviceIndexArg(const Napi::CallbackInfo& info, size_t i) {
  int64_t idx = intArgOr(info, i, 0);
  int64_t n = static_cast<int64_t>(torch::cuda::device_count());
  if (!torch::cuda::is_available()) {
#ifdef DMD_WITH_CUDA
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    throwType(std::string("no CUDA device is visible to this CUDA build of dmd-torch (CUDA_VISIBLE_DEVICES ") +
              (visible ? std::string("='") + visible + "'" : std::string("is unset")) + "; check the driver with nvidia-smi)");
#else
    throwType("CUDA is not available: this build of dmd-torch is CPU-only (rebuild against a CUDA libtorch, see the README's GPU builds)");
#endif
  }
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

#ifdef DMD_WITH_CUDA
// The caching allocator of a device exists only once CUDA is initialised on it (PyTorch does that
// lazily on first use); an empty tensor there initialises it, so statistics work before any tensor.
void initDevice(int dev) { (void)at::empty({0}, at::TensorOptions().device(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(dev)))); }

#ifdef DMD_GENERIC_DEVICE_ALLOCATOR
c10::DeviceAllocator* allocator() { return c10::getDeviceAllocator(c10::kCUDA); }
c10::CachingDeviceAllocator::DeviceStats deviceStats(int dev) { return allocator()->getDeviceStats(static_cast<c10::DeviceIndex>(dev)); }
void resetPeak(int dev) { allocator()->resetPeakStats(static_cast<c10::DeviceIndex>(dev)); }
void emptyCache() { allocator()->emptyCache(); }
#else
auto deviceStats(int dev) { return c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(dev)); }
void resetPeak(int dev) { c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(dev)); }
void emptyCache() { c10::cuda::CUDACachingAllocator::emptyCache(); }
#endif
#endif

// cudaMemoryStats(device) -> {allocated, peakAllocated, reserved, peakReserved} in bytes
Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  int dev = deviceIndexArg(info, 0);
  Napi::Object o = Napi::Object::New(info.Env());
#ifdef DMD_WITH_CUDA
  initDevice(dev);
  auto stats = deviceStats(dev);
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

// cudaMemoryInfo(device) -> {free, total} in bytes, as torch.cuda.mem_get_info (what the driver reports
// for the whole device, other processes included)
Napi::Value MemoryInfo(const Napi::CallbackInfo& info) {
  int dev = deviceIndexArg(info, 0);
  Napi::Object o = Napi::Object::New(info.Env());
#ifdef DMD_WITH_CUDA
  initDevice(dev);
  int previous = 0;
  size_t freeBytes = 0, totalBytes = 0;
  if (cudaGetDevice(&previous) != cudaSuccess || cudaSetDevice(dev) != cudaSuccess) throwType("cudaMemoryInfo: cannot select CUDA device " + std::to_string(dev));
  cudaError_t err = cudaMemGetInfo(&freeBytes, &totalBytes);
  (void)cudaSetDevice(previous);
  if (err != cudaSuccess) throwType(std::string("cudaMemGetInfo failed: ") + cudaGetErrorString(err));
  o.Set("free", static_cast<double>(freeBytes));
  o.Set("total", static_cast<double>(totalBytes));
#else
  (void)dev;
#endif
  return o;
}

Napi::Value ResetPeak(const Napi::CallbackInfo& info) {
  int dev = deviceIndexArg(info, 0);
#ifdef DMD_WITH_CUDA
  initDevice(dev);
  resetPeak(dev);
#else
  (void)dev;
#endif
  return info.Env().Undefined();
}

Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
#ifdef DMD_WITH_CUDA
  if (torch::cuda::is_available()) {
    initDevice(0);
    emptyCache();
  }
#endif
  return info.Env().Undefined();
}

// setAllowTF32(matmul, cudnn): TensorFloat-32 for float32 matmuls (cuBLAS) and convolutions (cuDNN) on
// Ampere and newer GPUs, as torch.backends.cuda.matmul.allow_tf32 / torch.backends.cudnn.allow_tf32.
// No effect on the CPU.
Napi::Value SetAllowTF32(const Napi::CallbackInfo& info) {
  auto& ctx = at::globalContext();
  ctx.setAllowTF32CuBLAS(boolArgOr(info, 0, ctx.allowTF32CuBLAS()));
  ctx.setAllowTF32CuDNN(boolArgOr(info, 1, ctx.allowTF32CuDNN()));
  return info.Env().Undefined();
}

// getAllowTF32() -> {matmul, cudnn}
Napi::Value GetAllowTF32(const Napi::CallbackInfo& info) {
  auto& ctx = at::globalContext();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("matmul", ctx.allowTF32CuBLAS());
  o.Set("cudnn", ctx.allowTF32CuDNN());
  return o;
}

// setDeterminism(algorithms, warnOnly, cudnnDeterministic, cudnnBenchmark): torch.use_deterministic_algorithms
// (with warn_only), torch.backends.cudnn.deterministic and torch.backends.cudnn.benchmark. With
// algorithms on, an operation that has no deterministic kernel throws (or warns, with warnOnly) naming
// itself; cuBLAS also needs CUBLAS_WORKSPACE_CONFIG=:4096:8 in the environment before its first use.
Napi::Value SetDeterminism(const Napi::CallbackInfo& info) {
  auto& ctx = at::globalContext();
  ctx.setDeterministicAlgorithms(boolArgOr(info, 0, ctx.deterministicAlgorithms()), boolArgOr(info, 1, ctx.deterministicAlgorithmsWarnOnly()));
  ctx.setDeterministicCuDNN(boolArgOr(info, 2, ctx.deterministicCuDNN()));
  ctx.setBenchmarkCuDNN(boolArgOr(info, 3, ctx.benchmarkCuDNN()));
  return info.Env().Undefined();
}

// getDeterminism() -> {algorithms, warnOnly, cudnnDeterministic, cudnnBenchmark}
Napi::Value GetDeterminism(const Napi::CallbackInfo& info) {
  auto& ctx = at::globalContext();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("algorithms", ctx.deterministicAlgorithms());
  o.Set("warnOnly", ctx.deterministicAlgorithmsWarnOnly());
  o.Set("cudnnDeterministic", ctx.deterministicCuDNN());
  o.Set("cudnnBenchmark", ctx.benchmarkCuDNN());
  return o;
}

}  // namespace

void registerCuda(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "cudaIsAvailable", IsAvailable);
  DMD_EXPORT(exports, env, "cudaDeviceCount", DeviceCount);
  DMD_EXPORT(exports, env, "cudaSynchronize", Synchronize);
  DMD_EXPORT(exports, env, "cudaManualSeedAll", ManualSeedAll);
  DMD_EXPORT(exports, env, "cudaMemoryStats", MemoryStats);
  DMD_EXPORT(exports, env, "cudaMemoryInfo", MemoryInfo);
  DMD_EXPORT(exports, env, "cudaResetPeak", ResetPeak);
  DMD_EXPORT(exports, env, "cudaEmptyCache", EmptyCache);
  DMD_EXPORT(exports, env, "setAllowTF32", SetAllowTF32);
  DMD_EXPORT(exports, env, "getAllowTF32", GetAllowTF32);
  DMD_EXPORT(exports, env, "setDeterminism", SetDeterminism);
  DMD_EXPORT(exports, env, "getDeterminism", GetDeterminism);
}

}  // namespace dmd
