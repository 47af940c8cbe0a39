// Tensor handles: a JS object owning one at::Tensor. Lifetime is explicit (dispose) with the GC
// finalizer as a safety net; CPU bytes are reported to V8 as external memory.
#include <atomic>

#include "common.h"

namespace dmd {

namespace {
std::atomic<int64_t> gLive{0};

// External-memory reports to V8 are batched: one napi call per 4 MiB of change instead of two per tensor.
int64_t gUnreported = 0;
void reportExternal(Napi::Env env, int64_t delta) {
  gUnreported += delta;
  if (gUnreported > (4 << 20) || gUnreported < -(4 << 20)) {
    const int64_t d = gUnreported;
    gUnreported = 0;
    Napi::MemoryManagement::AdjustExternalMemory(env, d);
  }
}

int64_t reportableBytes(const at::Tensor& t) {
  if (!t.defined() || !t.device().is_cpu()) return 0;
  return static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}
}  // namespace

AddonData& addonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// A handle is a JS external value pointing at a native TensorHandle (recognised by its magic
// number): one napi call to create, far cheaper than an ObjectWrap instance or a tagged object.
TensorHandle::TensorHandle(at::Tensor t) : magic_(kMagic), t_(std::move(t)), alive_(true) {
  ++gLive;
  reported_ = reportableBytes(t_);
}

void TensorHandle::finalize(napi_env env, void* data, void*) {
  auto* h = static_cast<TensorHandle*>(data);
  if (h->alive_) {
    --gLive;
    // may run during environment teardown: the memory report is best effort there
    if (h->reported_) {
      try {
        reportExternal(Napi::Env(env), -h->reported_);
      } catch (...) {
      }
    }
  }
  h->magic_ = 0;
  delete h;
}

Napi::Value TensorHandle::Wrap(Napi::Env env, at::Tensor t) {
  auto* h = new TensorHandle(std::move(t));
  napi_value ext;
  napi_status st = napi_create_external(env, h, &TensorHandle::finalize, nullptr, &ext);
  if (st != napi_ok) {
    h->alive_ = false;
    --gLive;
    delete h;
    NAPI_THROW_IF_FAILED(env, st, Napi::Value());
  }
  if (h->reported_) reportExternal(env, h->reported_);
  return Napi::Value(env, ext);
}

TensorHandle* TensorHandle::From(const Napi::Value& v) {
  napi_valuetype type;
  if (napi_typeof(v.Env(), v, &type) != napi_ok || type != napi_external) return nullptr;
  void* p = nullptr;
  if (napi_get_value_external(v.Env(), v, &p) != napi_ok || p == nullptr) return nullptr;
  auto* h = static_cast<TensorHandle*>(p);
  return h->magic_ == kMagic ? h : nullptr;
}

bool TensorHandle::Is(const Napi::Value& v) { return From(v) != nullptr; }

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
  if (reported_) reportExternal(env, -reported_);
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
