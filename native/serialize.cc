// torch.save / torch.load interop through libtorch's pickler: a plain dict (tensors, nested dicts,
// lists, numbers, strings) converts to and from JS values. safetensors is handled in TS.
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include "common.h"

namespace dmd {

namespace {

Napi::Value toJs(Napi::Env env, const c10::IValue& v, const std::string& path) {
  if (v.isNone()) return env.Null();
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isTensor()) return wrap(env, v.toTensor());
  if (v.isGenericDict()) {
    Napi::Object o = Napi::Object::New(env);
    for (const auto& e : v.toGenericDict()) {
      std::string key;
      if (e.key().isString()) key = e.key().toStringRef();
      else if (e.key().isInt()) key = std::to_string(e.key().toInt());
      else throwType("torch.save file: " + path + " has a dict key of type " + e.key().tagKind() + " (only string and integer keys are supported)");
      o.Set(key, toJs(env, e.value(), path + "." + key));
    }
    return o;
  }
  if (v.isList() || v.isTuple() || v.isIntList() || v.isDoubleList() || v.isBoolList() || v.isTensorList()) {
    std::vector<c10::IValue> items;
    if (v.isTuple()) {
      for (const auto& e : v.toTupleRef().elements()) items.push_back(e);
    } else {
      for (const auto& e : v.toListRef()) items.push_back(e);
    }
    Napi::Array a = Napi::Array::New(env, items.size());
    for (size_t i = 0; i < items.size(); ++i) a.Set(static_cast<uint32_t>(i), toJs(env, items[i], path + "[" + std::to_string(i) + "]"));
    return a;
  }
  throwType("torch.save file: " + path + " holds a value of type " + v.tagKind() + ", which dmd-torch does not read (save plain dicts of tensors, numbers, strings and lists)");
}

c10::IValue fromJs(const Napi::Value& v, const std::string& path, int depth) {
  if (depth > 64) throwRange("pickleSave: value nested too deeply at " + path);
  if (v.IsNull() || v.IsUndefined()) return c10::IValue();
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value();
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9007199254740992.0) return static_cast<int64_t>(d);
    return d;
  }
  if (v.IsString()) return v.As<Napi::String>().Utf8Value();
  if (TensorHandle* h = TensorHandle::From(v)) return h->tensor().detach();
  if (v.IsArray()) {
    c10::impl::GenericList list(c10::AnyType::get());
    Napi::Array a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) list.push_back(fromJs(a.Get(i), path + "[" + std::to_string(i) + "]", depth + 1));
    return list;
  }
  if (v.IsObject()) {
    c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
    Napi::Object o = v.As<Napi::Object>();
    Napi::Array keys = o.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
      dict.insert(k, fromJs(o.Get(k), path + "." + k, depth + 1));
    }
    return dict;
  }
  throwType("pickleSave: " + path + " is not a tensor, number, string, boolean, null, array or plain object");
}

// pickleLoad(bytes) -> JS value
Napi::Value PickleLoad(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray()) throwType("pickleLoad: argument must be a Buffer");
  Napi::Uint8Array b = info[0].As<Napi::Uint8Array>();
  std::vector<char> data(reinterpret_cast<const char*>(b.Data()), reinterpret_cast<const char*>(b.Data()) + b.ByteLength());
  c10::IValue v = torch::jit::pickle_load(data);
  return toJs(info.Env(), v, "<root>");
}

// pickleSave(value) -> Buffer (torch.save zip format, readable by torch.load). Unlike
// torch::jit::pickle_save, dicts and lists are written without TorchScript type tags
// (torch.jit._pickle.restore_type_tag), so the file loads with torch.load(f, weights_only=True), the
// default since PyTorch 2.6; libtorch's own unpickler reads it as before.
Napi::Value PickleSave(const Napi::CallbackInfo& info) {
  c10::IValue v = fromJs(info[0], "<root>", 0);
  std::vector<char> pickled;
  torch::jit::Pickler pickler([&](const char* buf, size_t n) { pickled.insert(pickled.end(), buf, buf + n); },
                              /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
                              /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(v);
  pickler.stop();
  std::vector<char> out;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* buf, size_t n) -> size_t {
      const char* b = static_cast<const char*>(buf);
      out.insert(out.end(), b, b + n);
      return n;
    });
    torch::jit::writeArchiveAndTensors("data", pickled.data(), pickled.size(), pickler.tensorData(), writer);
    writer.writeEndOfFile();
  }
  return Napi::Buffer<char>::Copy(info.Env(), out.data(), out.size());
}

}  // namespace

void registerSerialize(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "pickleLoad", PickleLoad);
  DMD_EXPORT(exports, env, "pickleSave", PickleSave);
}

}  // namespace dmd
