// Tensor creation: constants, ranges, and tensors over JS memory (zero-copy like torch.from_numpy,
// or copied like torch.tensor).
#include <atomic>
#include <mutex>
#include <thread>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "common.h"

namespace dmd {

namespace {

constexpr double kMaxBytes = 1125899906842624.0;  // 2^50 bytes: anything larger is a bad size, not a request

std::vector<int64_t> sizeArg(const Napi::CallbackInfo& info, size_t i, at::ScalarType dtype) {
  std::vector<int64_t> s = intListArg(info, i);
  double bytes = static_cast<double>(c10::elementSize(dtype));
  for (size_t k = 0; k < s.size(); ++k) {
    if (s[k] < 0) throwRange("size[" + std::to_string(k) + "] is negative (" + std::to_string(s[k]) + ")");
    bytes *= static_cast<double>(s[k]);
  }
  if (bytes > kMaxBytes) throwRange("requested tensor of " + std::to_string(bytes) + " bytes is absurdly large (limit 2^50 bytes)");
  return s;
}

at::TensorOptions optionsArg(const Napi::CallbackInfo& info, size_t dtypeIdx, at::ScalarType dflt) {
  at::ScalarType dt = optDtypeArg(info, dtypeIdx).value_or(dflt);
  c10::Device dev = optDeviceArg(info, dtypeIdx + 1).value_or(c10::Device(c10::kCPU));
  return at::TensorOptions().dtype(dt).device(dev);
}

// zeros(shape, dtype?, device?) and friends
Napi::Value Empty(const Napi::CallbackInfo& info) {
  auto o = optionsArg(info, 1, at::kFloat);
  return wrap(info.Env(), at::empty(sizeArg(info, 0, c10::typeMetaToScalarType(o.dtype())), o));
}
Napi::Value Zeros(const Napi::CallbackInfo& info) {
  auto o = optionsArg(info, 1, at::kFloat);
  return wrap(info.Env(), at::zeros(sizeArg(info, 0, c10::typeMetaToScalarType(o.dtype())), o));
}
Napi::Value Ones(const Napi::CallbackInfo& info) {
  auto o = optionsArg(info, 1, at::kFloat);
  return wrap(info.Env(), at::ones(sizeArg(info, 0, c10::typeMetaToScalarType(o.dtype())), o));
}
// full(shape, value, dtype?, device?)
Napi::Value Full(const Napi::CallbackInfo& info) {
  auto o = optionsArg(info, 2, at::kFloat);
  return wrap(info.Env(), at::full(sizeArg(info, 0, c10::typeMetaToScalarType(o.dtype())), scalarArg(info, 1), o));
}
// arange(start, end, step, dtype?, device?)
Napi::Value Arange(const Napi::CallbackInfo& info) {
  double start = numberArg(info, 0), end = numberArg(info, 1), step = numberArg(info, 2);
  if (step == 0) throwRange("arange: step must be non-zero");
  double n = std::ceil((end - start) / step);
  if (n > 1e12) throwRange("arange: too many elements");
  auto o = optionsArg(info, 3, at::kFloat);
  return wrap(info.Env(), at::arange(scalarArg(info, 0), scalarArg(info, 1), scalarArg(info, 2), o));
}
// linspace(start, end, steps, dtype?, device?)
Napi::Value Linspace(const Napi::CallbackInfo& info) {
  int64_t steps = intArg(info, 2);
  if (steps < 0 || steps > 1000000000) throwRange("linspace: steps must be in [0, 1e9]");
  auto o = optionsArg(info, 3, at::kFloat);
  return wrap(info.Env(), at::linspace(numberArg(info, 0), numberArg(info, 1), steps, o));
}
// eye(n, dtype?, device?)
Napi::Value Eye(const Napi::CallbackInfo& info) {
  int64_t n = intArg(info, 0);
  if (n < 0 || n > 1000000) throwRange("eye: n must be in [0, 1e6]");
  return wrap(info.Env(), at::eye(n, optionsArg(info, 1, at::kFloat)));
}

// ---- tensors over JS memory ---------------------------------------------------------------------
// The storage deleter of a zero-copy tensor releases its reference to the JS ArrayBuffer. libtorch may
// free storage on another thread (autograd workers); such releases wait in a queue that the main
// thread drains on the next call into the addon.
std::thread::id gMainThread;
std::mutex gQueueMutex;
std::vector<std::pair<napi_env, napi_ref>> gReleaseQueue;
std::atomic<bool> gQueued{false};
std::atomic<bool> gTearingDown{false};

void drainReleaseQueue() {
  if (!gQueued.load(std::memory_order_relaxed)) return;
  std::vector<std::pair<napi_env, napi_ref>> q;
  {
    std::lock_guard<std::mutex> lock(gQueueMutex);
    q.swap(gReleaseQueue);
    gQueued = false;
  }
  for (auto& [env, ref] : q) napi_delete_reference(env, ref);
}

at::ScalarType typedArrayDtype(const Napi::TypedArray& ta) {
  switch (ta.TypedArrayType()) {
    case napi_float32_array: return at::kFloat;
    case napi_float64_array: return at::kDouble;
    case napi_int32_array: return at::kInt;
    case napi_bigint64_array: return at::kLong;
    case napi_uint8_array: case napi_uint8_clamped_array: return at::kByte;
    case napi_int8_array: return at::kChar;
    case napi_int16_array: return at::kShort;
    case napi_uint16_array: return at::kHalf;  // raw 16-bit floats; bfloat16 when asked for
    default: throwType("unsupported TypedArray type for a tensor (use Float32Array, Float64Array, Int32Array, BigInt64Array, Uint8Array, Int8Array, Int16Array or Uint16Array)");
  }
}

// fromTypedArray(ta, shape, dtype?, share)
Napi::Value FromTypedArray(const Napi::CallbackInfo& info) {
  drainReleaseQueue();
  if (!info[0].IsTypedArray()) throwType("argument 0 must be a TypedArray");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  at::ScalarType natural = typedArrayDtype(ta);
  at::ScalarType dtype = optDtypeArg(info, 2).value_or(natural);
  if (c10::elementSize(dtype) != c10::elementSize(natural))
    throwType(std::string("dtype ") + c10::toString(dtype) + " does not match the TypedArray's element size");
  std::vector<int64_t> shape = sizeArg(info, 1, dtype);
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  const size_t elements = ta.ElementLength();
  if (static_cast<size_t>(numel) != elements)
    throwRange("shape [" + c10::Join(", ", shape) + "] holds " + std::to_string(numel) + " elements but the array has " + std::to_string(elements));
  bool share = boolArgOr(info, 3, false);
  Napi::ArrayBuffer ab = ta.ArrayBuffer();
  uint8_t* data = static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset();
  auto opts = at::TensorOptions().dtype(dtype);
  if (!share || elements == 0) {
    at::Tensor t = at::empty(shape, opts);
    if (elements) std::memcpy(t.data_ptr(), data, elements * c10::elementSize(dtype));
    return wrap(info.Env(), t);
  }
  napi_env env = info.Env();
  napi_ref ref;
  napi_create_reference(env, ab, 1, &ref);
  auto release = [env, ref](void*) {
    if (gTearingDown.load()) return;
    if (std::this_thread::get_id() == gMainThread) {
      napi_delete_reference(env, ref);
    } else {
      std::lock_guard<std::mutex> lock(gQueueMutex);
      gReleaseQueue.emplace_back(env, ref);
      gQueued = true;
    }
  };
  return wrap(info.Env(), at::from_blob(data, shape, release, opts));
}

// fromBuffer(buffer, shape, dtype): copies raw little-endian bytes (safetensors payloads)
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray() && !info[0].IsBuffer()) throwType("argument 0 must be a Buffer or Uint8Array");
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  at::ScalarType dtype = dtypeArg(info, 2);
  std::vector<int64_t> shape = sizeArg(info, 1, dtype);
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  size_t need = static_cast<size_t>(numel) * c10::elementSize(dtype);
  if (bytes.ByteLength() != need)
    throwRange("buffer has " + std::to_string(bytes.ByteLength()) + " bytes but shape [" + c10::Join(", ", shape) + "] of " +
               c10::toString(dtype) + " needs " + std::to_string(need));
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
  if (need) std::memcpy(t.data_ptr(), bytes.Data(), need);
  return wrap(info.Env(), t);
}

// fromFile(path, offset, shape, dtype): reads raw little-endian bytes from a file region straight into
// a new tensor's memory (one copy, no intermediate buffer: large pickled storages)
Napi::Value FromFile(const Napi::CallbackInfo& info) {
  std::string path = stringArg(info, 0);
  int64_t offset = intArg(info, 1);
  at::ScalarType dtype = dtypeArg(info, 3);
  std::vector<int64_t> shape = sizeArg(info, 2, dtype);
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  const size_t need = static_cast<size_t>(numel) * c10::elementSize(dtype);
  if (offset < 0) throwRange("fromFile: negative offset");
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throwRange(path + ": cannot open (" + std::strerror(errno) + ")");
  size_t done = 0;
  char* dst = static_cast<char*>(t.data_ptr());
  while (done < need) {
    ssize_t n = ::pread(fd, dst + done, need - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? std::strerror(errno) : "the file ends first";
      ::close(fd);
      throwRange(path + ": cannot read " + std::to_string(need) + " bytes at offset " + std::to_string(offset) + " (" + why + ")");
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return wrap(info.Env(), t);
}

}  // namespace

void registerCreation(Napi::Env env, Exports exports) {
  gMainThread = std::this_thread::get_id();
  env.AddCleanupHook([]() { gTearingDown = true; });
  DMD_EXPORT(exports, env, "empty", Empty);
  DMD_EXPORT(exports, env, "zeros", Zeros);
  DMD_EXPORT(exports, env, "ones", Ones);
  DMD_EXPORT(exports, env, "full", Full);
  DMD_EXPORT(exports, env, "arange", Arange);
  DMD_EXPORT(exports, env, "linspace", Linspace);
  DMD_EXPORT(exports, env, "eye", Eye);
  DMD_EXPORT(exports, env, "fromTypedArray", FromTypedArray);
  DMD_EXPORT(exports, env, "fromBuffer", FromBuffer);
  DMD_EXPORT(exports, env, "fromFile", FromFile);
}

}  // namespace dmd
