// Module handles: any native torch::nn::Module (the EDM UNets, LPIPS, GAN heads) seen through one
// interface: named parameters/buffers, train/eval, to(device, dtype), requires_grad, state dicts.
#include "common.h"

namespace dmd {

namespace {
const napi_type_tag kModuleTag = {0x3c4d5e6f708192a3ULL, 0xb4c5d6e7f8091a2bULL};
thread_local std::pair<std::shared_ptr<torch::nn::Module>, std::string>* gPendingModule = nullptr;
}  // namespace

Napi::Function ModuleHandle::Define(Napi::Env env) { return DefineClass(env, "ModuleHandle", {}); }

ModuleHandle::ModuleHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModuleHandle>(info) {
  if (!gPendingModule) throwType("ModuleHandle cannot be constructed directly");
  m_ = std::move(gPendingModule->first);
  kind_ = gPendingModule->second;
  gPendingModule = nullptr;
}

Napi::Object ModuleHandle::Wrap(Napi::Env env, std::shared_ptr<torch::nn::Module> m, const std::string& kind) {
  std::pair<std::shared_ptr<torch::nn::Module>, std::string> slot{std::move(m), kind};
  gPendingModule = &slot;
  Napi::Object o;
  try {
    o = addonData(env).moduleCtor.New({});
  } catch (...) {
    gPendingModule = nullptr;
    throw;
  }
  o.TypeTag(&kModuleTag);
  return o;
}

ModuleHandle* ModuleHandle::From(const Napi::Value& v) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kModuleTag)) return nullptr;
  return Unwrap(v.As<Napi::Object>());
}

std::shared_ptr<torch::nn::Module>& ModuleHandle::module() {
  if (!m_) throwType("this module was disposed");
  return m_;
}

namespace {

torch::nn::Module& modArg(const Napi::CallbackInfo& info, size_t i) {
  ModuleHandle* h = ModuleHandle::From(info[i]);
  if (!h) throwType("argument " + std::to_string(i) + " must be a Module");
  return *h->module();
}

Napi::Value namedTensors(Napi::Env env, const torch::OrderedDict<std::string, at::Tensor>& d) {
  Napi::Array names = Napi::Array::New(env, d.size());
  Napi::Array tensors = Napi::Array::New(env, d.size());
  uint32_t i = 0;
  for (const auto& item : d) {
    names.Set(i, Napi::String::New(env, item.key()));
    tensors.Set(i, wrap(env, item.value()));
    ++i;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("names", names);
  o.Set("tensors", tensors);
  return o;
}

Napi::Value Kind(const Napi::CallbackInfo& info) {
  ModuleHandle* h = ModuleHandle::From(info[0]);
  if (!h) throwType("argument 0 must be a Module");
  return Napi::String::New(info.Env(), h->kind());
}

Napi::Value NamedParameters(const Napi::CallbackInfo& info) { return namedTensors(info.Env(), modArg(info, 0).named_parameters(true)); }
Napi::Value NamedBuffers(const Napi::CallbackInfo& info) { return namedTensors(info.Env(), modArg(info, 0).named_buffers(true)); }

// parameterNames(m): names only (no handles), in state-dict order: parameters then buffers
Napi::Value StateNames(const Napi::CallbackInfo& info) {
  auto& m = modArg(info, 0);
  auto ps = m.named_parameters(true);
  auto bs = m.named_buffers(true);
  Napi::Array out = Napi::Array::New(info.Env());
  uint32_t i = 0;
  for (const auto& it : ps) out.Set(i++, it.key());
  for (const auto& it : bs) out.Set(i++, it.key());
  return out;
}

Napi::Value Train(const Napi::CallbackInfo& info) {
  modArg(info, 0).train(boolArgOr(info, 1, true));
  return info.Env().Undefined();
}
Napi::Value IsTraining(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), modArg(info, 0).is_training()); }

// moduleTo(m, device|null, dtype|null): floating parameters and buffers are cast
Napi::Value To(const Napi::CallbackInfo& info) {
  auto& m = modArg(info, 0);
  auto dev = optDeviceArg(info, 1);
  auto dt = optDtypeArg(info, 2);
  if (dt && !at::isFloatingType(*dt)) throwType("module.to: dtype must be floating point");
  if (dev && dt) m.to(*dev, *dt);
  else if (dev) m.to(*dev);
  else if (dt) m.to(*dt);
  return info.Env().Undefined();
}

Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  auto& m = modArg(info, 0);
  bool on = boolArgOr(info, 1, true);
  for (auto& p : m.parameters(true)) p.set_requires_grad(on);
  return info.Env().Undefined();
}

Napi::Value ParameterCount(const Napi::CallbackInfo& info) {
  int64_t n = 0;
  for (auto& p : modArg(info, 0).parameters(true)) n += p.numel();
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// moduleLoadState(m, names, tensors, strict) -> {missing, unexpected}; copies values in place
// (dtype/device converted), rejects shape mismatches naming the key.
Napi::Value LoadState(const Napi::CallbackInfo& info) {
  auto& m = modArg(info, 0);
  if (!info[1].IsArray()) throwType("argument 1 must be an array of names");
  Napi::Array names = info[1].As<Napi::Array>();
  std::vector<at::Tensor> values = tensorListArg(info, 2);
  if (names.Length() != values.size()) throwRange("loadState: names and tensors differ in length");
  bool strict = boolArgOr(info, 3, true);
  std::unordered_map<std::string, at::Tensor> own;
  std::vector<std::string> order;
  for (const auto& it : m.named_parameters(true)) { own[it.key()] = it.value(); order.push_back(it.key()); }
  for (const auto& it : m.named_buffers(true)) { own[it.key()] = it.value(); order.push_back(it.key()); }
  std::unordered_map<std::string, at::Tensor> given;
  Napi::Array unexpected = Napi::Array::New(info.Env());
  uint32_t nu = 0;
  for (uint32_t i = 0; i < names.Length(); ++i) {
    std::string k = names.Get(i).As<Napi::String>().Utf8Value();
    auto it = own.find(k);
    if (it == own.end()) { unexpected.Set(nu++, k); continue; }
    if (!it->second.sizes().equals(values[i].sizes()))
      throwRange("state dict key '" + k + "' has shape [" + c10::Join(", ", values[i].sizes()) + "] but the network expects [" +
                 c10::Join(", ", it->second.sizes()) + "]");
    if (!(at::isFloatingType(values[i].scalar_type()) || values[i].scalar_type() == it->second.scalar_type()))
      throwType("state dict key '" + k + "' has dtype " + c10::toString(values[i].scalar_type()) + ", expected a floating-point tensor");
    given[k] = values[i];
  }
  Napi::Array missing = Napi::Array::New(info.Env());
  uint32_t nm = 0;
  for (const auto& k : order)
    if (!given.count(k)) missing.Set(nm++, k);
  if (strict && (nm || nu)) {
    std::string msg = "state dict does not match the network:";
    if (nm) msg += " " + std::to_string(nm) + " missing key(s), first '" + missing.Get(0u).As<Napi::String>().Utf8Value() + "'";
    if (nu) msg += std::string(nm ? ";" : "") + " " + std::to_string(nu) + " unexpected key(s), first '" + unexpected.Get(0u).As<Napi::String>().Utf8Value() + "'";
    throwRange(msg);
  }
  {
    at::NoGradGuard ng;
    for (auto& [k, v] : given) own[k].copy_(v);
  }
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("missing", missing);
  r.Set("unexpected", unexpected);
  return r;
}

// moduleCopy(dst, src): parameters and buffers of an identically built module
Napi::Value Copy(const Napi::CallbackInfo& info) {
  auto& dst = modArg(info, 0);
  auto& src = modArg(info, 1);
  auto dp = dst.named_parameters(true), sp = src.named_parameters(true);
  auto db = dst.named_buffers(true), sb = src.named_buffers(true);
  if (dp.size() != sp.size() || db.size() != sb.size()) throwRange("moduleCopy: the modules have different structures");
  at::NoGradGuard ng;
  auto copyAll = [](torch::OrderedDict<std::string, at::Tensor>& d, torch::OrderedDict<std::string, at::Tensor>& s) {
    for (size_t i = 0; i < d.size(); ++i) {
      if (d[i].key() != s[i].key() || !d[i].value().sizes().equals(s[i].value().sizes()))
        throwRange("moduleCopy: '" + d[i].key() + "' does not match '" + s[i].key() + "'");
      d[i].value().copy_(s[i].value());
    }
  };
  copyAll(dp, sp);
  copyAll(db, sb);
  return info.Env().Undefined();
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  ModuleHandle* h = ModuleHandle::From(info[0]);
  if (!h) throwType("argument 0 must be a Module");
  h->release();
  return info.Env().Undefined();
}

}  // namespace

void registerModule(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "moduleKind", Kind);
  DMD_EXPORT(exports, env, "moduleNamedParameters", NamedParameters);
  DMD_EXPORT(exports, env, "moduleNamedBuffers", NamedBuffers);
  DMD_EXPORT(exports, env, "moduleStateNames", StateNames);
  DMD_EXPORT(exports, env, "moduleTrain", Train);
  DMD_EXPORT(exports, env, "moduleIsTraining", IsTraining);
  DMD_EXPORT(exports, env, "moduleTo", To);
  DMD_EXPORT(exports, env, "moduleSetRequiresGrad", SetRequiresGrad);
  DMD_EXPORT(exports, env, "moduleParameterCount", ParameterCount);
  DMD_EXPORT(exports, env, "moduleLoadState", LoadState);
  DMD_EXPORT(exports, env, "moduleCopy", Copy);
  DMD_EXPORT(exports, env, "moduleDispose", Dispose);
}

}  // namespace dmd
