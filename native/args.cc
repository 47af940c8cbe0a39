// Argument conversion from JS values; every failure is a TypeError/RangeError naming the argument.
#include <ATen/ScalarOps.h>

#include <cmath>

#include "common.h"

namespace dmd {

namespace {
std::string argName(size_t i) { return "argument " + std::to_string(i); }
}  // namespace

bool isNullish(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

at::Tensor& tensorArg(const Napi::CallbackInfo& info, size_t i) {
  TensorHandle* h = TensorHandle::From(info[i]);
  if (!h) throwType(argName(i) + " must be a Tensor");
  return h->tensor();
}

c10::optional<at::Tensor> optTensorArg(const Napi::CallbackInfo& info, size_t i) {
  if (isNullish(info[i])) return c10::nullopt;
  return tensorArg(info, i);
}

// An array of tensor handles, or {gradsOf: [handles]} for the .grad of each (all must exist).
std::vector<at::Tensor> tensorListArg(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = info[i];
  bool grads = false;
  if (v.IsObject() && !v.IsArray() && v.As<Napi::Object>().Has("gradsOf")) {
    v = v.As<Napi::Object>().Get("gradsOf");
    grads = true;
  }
  if (!v.IsArray()) throwType(argName(i) + " must be an array of Tensors");
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    TensorHandle* h = TensorHandle::From(arr.Get(k));
    if (!h) throwType(argName(i) + "[" + std::to_string(k) + "] must be a Tensor");
    if (grads) {
      const at::Tensor& g = h->tensor().grad();
      if (!g.defined())
        throwType(argName(i) + "[" + std::to_string(k) + "] has no gradient (call backward() first, or skip parameters without grad)");
      out.push_back(g);
    } else {
      out.push_back(h->tensor());
    }
  }
  return out;
}

double numberArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) throwType(argName(i) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

double numberArgOr(const Napi::CallbackInfo& info, size_t i, double dflt) {
  return isNullish(info[i]) ? dflt : numberArg(info, i);
}

c10::optional<double> optNumberArg(const Napi::CallbackInfo& info, size_t i) {
  if (isNullish(info[i])) return c10::nullopt;
  return numberArg(info, i);
}

int64_t intArg(const Napi::CallbackInfo& info, size_t i) {
  double d = numberArg(info, i);
  if (!std::isfinite(d) || std::floor(d) != d) throwType(argName(i) + " must be an integer, got " + std::to_string(d));
  if (std::fabs(d) > 9007199254740992.0) throwRange(argName(i) + " is too large");
  return static_cast<int64_t>(d);
}

int64_t intArgOr(const Napi::CallbackInfo& info, size_t i, int64_t dflt) { return isNullish(info[i]) ? dflt : intArg(info, i); }

bool boolArgOr(const Napi::CallbackInfo& info, size_t i, bool dflt) {
  if (isNullish(info[i])) return dflt;
  if (!info[i].IsBoolean()) throwType(argName(i) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::string stringArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsString()) throwType(argName(i) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

std::vector<int64_t> intListArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsArray()) throwType(argName(i) + " must be an array of integers");
  Napi::Array arr = info[i].As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value e = arr.Get(k);
    if (!e.IsNumber()) throwType(argName(i) + "[" + std::to_string(k) + "] must be an integer");
    double d = e.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9007199254740992.0)
      throwType(argName(i) + "[" + std::to_string(k) + "] must be an integer, got " + std::to_string(d));
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

c10::optional<std::vector<int64_t>> optIntListArg(const Napi::CallbackInfo& info, size_t i) {
  if (isNullish(info[i])) return c10::nullopt;
  return intListArg(info, i);
}

// JS numbers that are integral become integer scalars (like a Python int literal), others doubles;
// booleans become boolean scalars.
at::Scalar scalarFrom(const Napi::Value& v, size_t i) {
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (!v.IsNumber()) throwType(argName(i) + " must be a number or a Tensor");
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9007199254740992.0) return at::Scalar(static_cast<int64_t>(d));
  return at::Scalar(d);
}

at::Scalar scalarArg(const Napi::CallbackInfo& info, size_t i) { return scalarFrom(info[i], i); }

at::ScalarType dtypeFrom(const Napi::Value& v, size_t i) {
  if (!v.IsNumber()) throwType(argName(i) + " must be a dtype");
  int code = v.As<Napi::Number>().Int32Value();
  switch (static_cast<at::ScalarType>(code)) {
    case at::kByte: case at::kChar: case at::kShort: case at::kInt: case at::kLong: case at::kHalf:
    case at::kFloat: case at::kDouble: case at::kBool: case at::kBFloat16:
      return static_cast<at::ScalarType>(code);
    default:
      throwType(argName(i) + ": unsupported dtype code " + std::to_string(code));
  }
}

at::ScalarType dtypeArg(const Napi::CallbackInfo& info, size_t i) { return dtypeFrom(info[i], i); }

c10::optional<at::ScalarType> optDtypeArg(const Napi::CallbackInfo& info, size_t i) {
  if (isNullish(info[i])) return c10::nullopt;
  return dtypeArg(info, i);
}

c10::Device deviceArg(const Napi::CallbackInfo& info, size_t i) {
  std::string s = stringArg(info, i);
  try {
    c10::Device d(s);
    if (!d.is_cpu() && !d.is_cuda()) throwType(argName(i) + ": device must be 'cpu', 'cuda' or 'cuda:N', got '" + s + "'");
    return d;
  } catch (const c10::Error&) {
    throwType(argName(i) + ": device must be 'cpu', 'cuda' or 'cuda:N', got '" + s + "'");
  }
}

c10::optional<c10::Device> optDeviceArg(const Napi::CallbackInfo& info, size_t i) {
  if (isNullish(info[i])) return c10::nullopt;
  return deviceArg(info, i);
}

c10::optional<at::Generator> optGeneratorArg(const Napi::CallbackInfo& info, size_t i) {
  if (isNullish(info[i])) return c10::nullopt;
  GeneratorHandle* g = GeneratorHandle::From(info[i]);
  if (!g) throwType(argName(i) + " must be a Generator");
  return g->generator();
}

at::Tensor operandArg(const Napi::CallbackInfo& info, size_t i, const at::Tensor& like) {
  if (TensorHandle* h = TensorHandle::From(info[i])) return h->tensor();
  at::Tensor s = c10::scalar_to_tensor(scalarArg(info, i), like.device());
  s.unsafeGetTensorImpl()->set_wrapped_number(true);
  return s;
}

int64_t positiveField(const Napi::Object& o, const char* key, const std::string& what) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throwType(what + ": '" + key + "' must be a positive integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 1 || d != std::floor(d) || d > 1e6) throwRange(what + ": '" + key + "' must be a positive integer");
  return static_cast<int64_t>(d);
}

}  // namespace dmd
