// torch.save files written through libtorch's pickler: a plain dict (tensors, nested dicts, lists,
// numbers, strings) of JS values becomes a zip-format file that torch.load reads. Reading any torch.save
// file (and Python pickles) is TypeScript's (src/io/pickle.ts), as is safetensors.
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include "common.h"

namespace dmd {

namespace {

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
  DMD_EXPORT(exports, env, "pickleSave", PickleSave);
}

}  // namespace dmd
