// TorchScript modules (torch.jit.save files) such as the Inception-v3 feature extractor that
// clean-fid and StyleGAN2-ADA use for FID: load onto a device, call a method with positional and
// keyword arguments (tensors, numbers, booleans, strings).
#include <torch/script.h>

#include "common.h"

namespace dmd {

namespace {

struct ScriptHolder : torch::nn::Module {
  explicit ScriptHolder(torch::jit::Module m) : script(std::move(m)) {}
  torch::jit::Module script;
};

c10::IValue toIValue(const Napi::Value& v, size_t i) {
  if (TensorHandle* h = TensorHandle::From(v)) return h->tensor();
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value();
  if (v.IsString()) return v.As<Napi::String>().Utf8Value();
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (std::floor(d) == d && std::fabs(d) < 9007199254740992.0) return static_cast<int64_t>(d);
    return d;
  }
  if (isNullish(v)) return c10::IValue();
  throwType("script argument " + std::to_string(i) + " must be a Tensor, number, boolean, string or null");
}

Napi::Value fromIValue(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) return wrap(env, v.toTensor());
  if (v.isNone()) return env.Null();
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isTuple() || v.isList()) {
    std::vector<c10::IValue> items;
    if (v.isTuple()) for (const auto& e : v.toTupleRef().elements()) items.push_back(e);
    else for (const auto& e : v.toListRef()) items.push_back(e);
    Napi::Array a = Napi::Array::New(env, items.size());
    for (size_t k = 0; k < items.size(); ++k) a.Set(static_cast<uint32_t>(k), fromIValue(env, items[k]));
    return a;
  }
  throwType(std::string("the script returned a value of type ") + v.tagKind() + ", which dmd-torch does not convert");
}

// scriptLoad(path, device)
Napi::Value Load(const Napi::CallbackInfo& info) {
  std::string path = stringArg(info, 0);
  c10::Device dev = optDeviceArg(info, 1).value_or(c10::Device(c10::kCPU));
  torch::jit::Module m = torch::jit::load(path, dev);
  m.eval();
  return ModuleHandle::Wrap(info.Env(), std::make_shared<ScriptHolder>(std::move(m)), "TorchScript");
}

// scriptCall(m, method, args[], kwargs{}) -> Tensor | array | number | null
Napi::Value Call(const Napi::CallbackInfo& info) {
  ScriptHolder* s = &moduleArg<ScriptHolder>(info, 0, "a TorchScript");
  std::string method = stringArg(info, 1);
  auto fn = s->script.find_method(method);
  if (!fn) throwType("the TorchScript module has no method '" + method + "'");
  std::vector<c10::IValue> args;
  if (info[2].IsArray()) {
    Napi::Array a = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) args.push_back(toIValue(a.Get(i), i));
  }
  torch::jit::Kwargs kwargs;
  if (info[3].IsObject() && !info[3].IsArray()) {
    Napi::Object o = info[3].As<Napi::Object>();
    Napi::Array keys = o.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
      kwargs[k] = toIValue(o.Get(k), i);
    }
  }
  return fromIValue(info.Env(), (*fn)(args, kwargs));
}

// scriptState(m) -> {names, tensors}: the module's parameters and buffers under their dotted names (how
// weights are read out of a TorchScript archive, e.g. openai CLIP's released .pt files)
Napi::Value State(const Napi::CallbackInfo& info) {
  ScriptHolder* s = &moduleArg<ScriptHolder>(info, 0, "a TorchScript");
  Napi::Env env = info.Env();
  std::vector<std::pair<std::string, at::Tensor>> all;
  for (const auto& p : s->script.named_parameters(true)) all.emplace_back(p.name, p.value);
  for (const auto& b : s->script.named_buffers(true)) all.emplace_back(b.name, b.value);
  Napi::Array names = Napi::Array::New(env, all.size());
  Napi::Array tensors = Napi::Array::New(env, all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    names.Set(static_cast<uint32_t>(i), Napi::String::New(env, all[i].first));
    tensors.Set(static_cast<uint32_t>(i), wrap(env, all[i].second));
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("names", names);
  o.Set("tensors", tensors);
  return o;
}

}  // namespace

void registerTorchScript(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "scriptLoad", Load);
  DMD_EXPORT(exports, env, "scriptCall", Call);
  DMD_EXPORT(exports, env, "scriptState", State);
}

}  // namespace dmd
