// Tensor handles: a JS object owning one at::Tensor. Lifetime is explicit (dispose) with the GC
// finalizer as a safety net; CPU bytes are reported to V8 as external memory.
#include <atomic>

#include "common.h"

namespace dmd {

namespace {
const napi_type_tag kTensorTag = {0x6a1c2f0e9d3b4c71ULL, 0x8e5d4a3b2c1f0e9dULL};
std::atomic<int64_t> gLive{0};
thread_local at::Tensor* gPending = nullptr;

int64_t reportableBytes(const at::Tensor& t) {
  if (!t.defined() || !t.device().is_cpu()) return 0;
  return static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}
}  // namespace

AddonData& addonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

Napi::Function TensorHandle::Define(Napi::Env env) { return DefineClass(env, "TensorHandle", {}); }

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {
  if (gPending == nullptr) throwType("TensorHandle cannot be constructed directly; use the dmd-torch tensor functions");
  t_ = std::move(*gPending);
  gPending = nullptr;
  alive_ = true;
  ++gLive;
  reported_ = reportableBytes(t_);
  if (reported_) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reported_);
}

TensorHandle::~TensorHandle() {
  if (alive_) {
    alive_ = false;
    --gLive;
    // The finalizer may run during environment teardown; the memory report is best effort there.
    if (reported_) {
      try {
        Napi::MemoryManagement::AdjustExternalMemory(Env(), -reported_);
      } catch (...) {
      }
    }
  }
}

Napi::Object TensorHandle::Wrap(Napi::Env env, at::Tensor t) {
  at::Tensor slot = std::move(t);
  gPending = &slot;
  Napi::Object obj;
  try {
    obj = addonData(env).tensorCtor.New({});
  } catch (...) {
    gPending = nullptr;
    throw;
  }
  gPending = nullptr;
  obj.TypeTag(&kTensorTag);
  return obj;
}

bool TensorHandle::Is(const Napi::Value& v) { return v.IsObject() && v.As<Napi::Object>().CheckTypeTag(&kTensorTag); }

TensorHandle* TensorHandle::From(const Napi::Value& v) {
  if (!Is(v)) return nullptr;
  return Unwrap(v.As<Napi::Object>());
}

int64_t TensorHandle::liveCount() { return gLive.load(); }

at::Tensor& TensorHandle::tensor() {
  if (!alive_)
    throwType("this tensor was disposed (by dispose() or by the tidy() scope that created it); keep it with keep() or return it from tidy()");
  return t_;
}

void TensorHandle::dispose(Napi::Env env) {
  if (!alive_) return;
  alive_ = false;
  --gLive;
  t_ = at::Tensor();
  if (reported_) Napi::MemoryManagement::AdjustExternalMemory(env, -reported_);
  reported_ = 0;
}

Napi::Value wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  return TensorHandle::Wrap(env, std::move(t));
}

Napi::Value wrapOptional(Napi::Env env, const at::Tensor& t) { return t.defined() ? wrap(env, t) : env.Null(); }

Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  Napi::Array arr = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); ++i) arr.Set(static_cast<uint32_t>(i), wrapOptional(env, ts[i]));
  return arr;
}

Napi::Value shapeValue(Napi::Env env, at::IntArrayRef s) {
  Napi::Array arr = Napi::Array::New(env, s.size());
  for (size_t i = 0; i < s.size(); ++i) arr.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(s[i])));
  return arr;
}

// ---- metadata and lifetime ---------------------------------------------------------------------
namespace {

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  TensorHandle* h = TensorHandle::From(info[0]);
  if (!h) throwType("dispose: argument must be a tensor handle");
  h->dispose(info.Env());
  return info.Env().Undefined();
}

Napi::Value DisposeMany(const Napi::CallbackInfo& info) {
  if (!info[0].IsArray()) throwType("disposeMany: argument must be an array of tensor handles");
  Napi::Array arr = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    TensorHandle* h = TensorHandle::From(arr.Get(i));
    if (h) h->dispose(info.Env());
  }
  return info.Env().Undefined();
}

Napi::Value IsDisposed(const Napi::CallbackInfo& info) {
  TensorHandle* h = TensorHandle::From(info[0]);
  if (!h) throwType("isDisposed: argument must be a tensor handle");
  return Napi::Boolean::New(info.Env(), h->disposed());
}

Napi::Value IsTensor(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), TensorHandle::Is(info[0])); }

Napi::Value LiveTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(TensorHandle::liveCount()));
}

Napi::Value Shape(const Napi::CallbackInfo& info) { return shapeValue(info.Env(), tensorArg(info, 0).sizes()); }
Napi::Value Strides(const Napi::CallbackInfo& info) { return shapeValue(info.Env(), tensorArg(info, 0).strides()); }
Napi::Value Dim(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), tensorArg(info, 0).dim()); }
Napi::Value Numel(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(tensorArg(info, 0).numel()));
}
Napi::Value DType(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<int>(tensorArg(info, 0).scalar_type()));
}
Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), tensorArg(info, 0).device().str()); }
Napi::Value IsContiguous(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), tensorArg(info, 0).is_contiguous());
}
Napi::Value SameStorage(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), tensorArg(info, 0).is_alias_of(tensorArg(info, 1)));
}

Napi::Value Item(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  if (t.numel() != 1) throwRange("item(): the tensor has " + std::to_string(t.numel()) + " elements, item() needs exactly one");
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
  if (s.isIntegral(false)) {
    return Napi::Number::New(info.Env(), static_cast<double>(s.toLong()));
  }
  return Napi::Number::New(info.Env(), s.toDouble());
}

// Raw little-endian bytes of the tensor (copied from any device, made contiguous) into a new Buffer.
Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  at::Tensor t = tensorArg(info, 0).detach().to(at::kCPU).contiguous();
  const size_t n = static_cast<size_t>(t.numel()) * t.element_size();
  Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(info.Env(), n);
  if (n) std::memcpy(buf.Data(), t.data_ptr(), n);
  return buf;
}

}  // namespace

void registerTensor(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "dispose", Dispose);
  DMD_EXPORT(exports, env, "disposeMany", DisposeMany);
  DMD_EXPORT(exports, env, "isDisposed", IsDisposed);
  DMD_EXPORT(exports, env, "liveTensors", LiveTensors);
  DMD_EXPORT(exports, env, "isTensor", IsTensor);
  DMD_EXPORT(exports, env, "shape", Shape);
  DMD_EXPORT(exports, env, "strides", Strides);
  DMD_EXPORT(exports, env, "dim", Dim);
  DMD_EXPORT(exports, env, "numel", Numel);
  DMD_EXPORT(exports, env, "dtype", DType);
  DMD_EXPORT(exports, env, "device", Device);
  DMD_EXPORT(exports, env, "isContiguous", IsContiguous);
  DMD_EXPORT(exports, env, "sameStorage", SameStorage);
  DMD_EXPORT(exports, env, "item", Item);
  DMD_EXPORT(exports, env, "toBuffer", ToBuffer);
}

}  // namespace dmd
