// Multi-tensor primitives: one N-API call updates a whole parameter list, so an optimizer step over
// hundreds of tensors costs a handful of calls. Lists are arrays of tensors or {gradsOf: params}.
#include "common.h"

namespace dmd {

namespace {

void sameLength(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b, const char* what) {
  if (a.size() != b.size())
    throwRange(std::string(what) + ": lists differ in length (" + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + ")");
}

// Element-wise in-place updates never record autograd history on parameters.
struct NoGrad {
  at::NoGradGuard guard;
};

// foreachHasGrad(params) -> boolean[]
Napi::Value HasGrad(const Napi::CallbackInfo& info) {
  auto ps = tensorListArg(info, 0);
  Napi::Array out = Napi::Array::New(info.Env(), ps.size());
  for (size_t i = 0; i < ps.size(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Boolean::New(info.Env(), ps[i].grad().defined()));
  return out;
}

// foreachZeroGrad(params, setToNone)
Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
  NoGrad ng;
  auto ps = tensorListArg(info, 0);
  bool none = boolArgOr(info, 1, true);
  for (auto& p : ps) {
    if (!p.grad().defined()) continue;
    if (none) p.mutable_grad() = at::Tensor();
    else p.mutable_grad().zero_();
  }
  return info.Env().Undefined();
}

Napi::Value Zero(const Napi::CallbackInfo& info) {
  NoGrad ng;
  auto ts = tensorListArg(info, 0);
  at::_foreach_zero_(ts);
  return info.Env().Undefined();
}

// foreachMul(list, scalar | list)
Napi::Value Mul(const Napi::CallbackInfo& info) {
  NoGrad ng;
  auto ts = tensorListArg(info, 0);
  if (info[1].IsNumber()) {
    at::_foreach_mul_(ts, numberArg(info, 1));
  } else {
    auto other = tensorListArg(info, 1);
    sameLength(ts, other, "foreachMul");
    at::_foreach_mul_(ts, other);
  }
  return info.Env().Undefined();
}

// foreachAdd(list, scalar | list, alpha)
Napi::Value Add(const Napi::CallbackInfo& info) {
  NoGrad ng;
  auto ts = tensorListArg(info, 0);
  if (info[1].IsNumber()) {
    at::_foreach_add_(ts, numberArg(info, 1));
  } else {
    auto other = tensorListArg(info, 1);
    sameLength(ts, other, "foreachAdd");
    at::_foreach_add_(ts, other, numberArgOr(info, 2, 1.0));
  }
  return info.Env().Undefined();
}

// foreachLerp(list, ends, weight): list += weight * (ends - list)
Napi::Value Lerp(const Napi::CallbackInfo& info) {
  NoGrad ng;
  auto ts = tensorListArg(info, 0);
  auto ends = tensorListArg(info, 1);
  sameLength(ts, ends, "foreachLerp");
  double w = numberArg(info, 2);
#if DMD_TORCH_AT_LEAST(2, 0)
  at::_foreach_lerp_(ts, ends, w);
#else
  for (size_t i = 0; i < ts.size(); ++i) ts[i].lerp_(ends[i], w);
#endif
  return info.Env().Undefined();
}

// foreachAddcmul(list, t1, t2, value)
Napi::Value Addcmul(const Napi::CallbackInfo& info) {
  NoGrad ng;
  auto ts = tensorListArg(info, 0);
  auto a = tensorListArg(info, 1);
  auto b = tensorListArg(info, 2);
  sameLength(ts, a, "foreachAddcmul");
  sameLength(ts, b, "foreachAddcmul");
  at::_foreach_addcmul_(ts, a, b, numberArg(info, 3));
  return info.Env().Undefined();
}

// foreachAddcdiv(list, t1, t2, value)
Napi::Value Addcdiv(const Napi::CallbackInfo& info) {
  NoGrad ng;
  auto ts = tensorListArg(info, 0);
  auto a = tensorListArg(info, 1);
  auto b = tensorListArg(info, 2);
  sameLength(ts, a, "foreachAddcdiv");
  sameLength(ts, b, "foreachAddcdiv");
  at::_foreach_addcdiv_(ts, a, b, numberArg(info, 3));
  return info.Env().Undefined();
}

Napi::Value Sqrt(const Napi::CallbackInfo& info) {
  NoGrad ng;
  auto ts = tensorListArg(info, 0);
  at::_foreach_sqrt_(ts);
  return info.Env().Undefined();
}

// foreachCopy(dst, src)
Napi::Value Copy(const Napi::CallbackInfo& info) {
  NoGrad ng;
  auto dst = tensorListArg(info, 0);
  auto src = tensorListArg(info, 1);
  sameLength(dst, src, "foreachCopy");
  for (size_t i = 0; i < dst.size(); ++i) {
    if (!dst[i].sizes().equals(src[i].sizes()))
      throwRange("foreachCopy: tensor " + std::to_string(i) + " has shape [" + c10::Join(", ", src[i].sizes()) + "], expected [" +
                 c10::Join(", ", dst[i].sizes()) + "]");
    dst[i].copy_(src[i]);
  }
  return info.Env().Undefined();
}

// foreachZerosLike(list, dtype|null) -> new tensors (optimizer state)
Napi::Value ZerosLike(const Napi::CallbackInfo& info) {
  NoGrad ng;
  auto ts = tensorListArg(info, 0);
  auto dt = optDtypeArg(info, 1);
  std::vector<at::Tensor> out;
  out.reserve(ts.size());
  for (auto& t : ts) out.push_back(dt ? at::zeros_like(t, at::TensorOptions().dtype(*dt)) : at::zeros_like(t));
  return wrapList(info.Env(), out);
}

// foreachClone(list) -> detached copies
Napi::Value Clone(const Napi::CallbackInfo& info) {
  NoGrad ng;
  auto ts = tensorListArg(info, 0);
  std::vector<at::Tensor> out;
  out.reserve(ts.size());
  for (auto& t : ts) out.push_back(t.detach().clone());
  return wrapList(info.Env(), out);
}

// foreachAllFinite(list) -> boolean (one sync)
Napi::Value AllFinite(const Napi::CallbackInfo& info) {
  NoGrad ng;
  auto ts = tensorListArg(info, 0);
  if (ts.empty()) return Napi::Boolean::New(info.Env(), true);
  std::vector<at::Tensor> flags;
  flags.reserve(ts.size());
  for (auto& t : ts) flags.push_back(t.isfinite().all());
  return Napi::Boolean::New(info.Env(), at::stack(flags).all().item<bool>());
}

// clipGradNorm(params, maxNorm, normType) -> total norm (0-dim float32 tensor, before clipping).
// Parameters without a gradient are skipped; no host sync happens here.
Napi::Value ClipGradNorm(const Napi::CallbackInfo& info) {
  NoGrad ng;
  auto ps = tensorListArg(info, 0);
  double maxNorm = numberArg(info, 1);
  double p = numberArgOr(info, 2, 2.0);
  std::vector<at::Tensor> grads;
  for (auto& t : ps)
    if (t.grad().defined()) grads.push_back(t.grad());
  if (grads.empty()) return wrap(info.Env(), at::zeros({}, at::TensorOptions().dtype(at::kFloat)));
  std::vector<at::Tensor> norms;
  norms.reserve(grads.size());
  for (auto& g : grads) norms.push_back(at::linalg_vector_norm(g, p, c10::nullopt, false, at::kFloat));
  at::Tensor total = at::linalg_vector_norm(at::stack(norms), p);
  if (std::isfinite(maxNorm) && maxNorm > 0) {
    at::Tensor coef = (maxNorm / (total + 1e-6)).clamp_max(1.0);
    for (auto& g : grads) g.mul_(coef.to(g.scalar_type()));
  }
  return wrap(info.Env(), total);
}

}  // namespace

void registerForeach(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "foreachHasGrad", HasGrad);
  DMD_EXPORT(exports, env, "foreachZeroGrad", ZeroGrad);
  DMD_EXPORT(exports, env, "foreachZero", Zero);
  DMD_EXPORT(exports, env, "foreachMul", Mul);
  DMD_EXPORT(exports, env, "foreachAdd", Add);
  DMD_EXPORT(exports, env, "foreachLerp", Lerp);
  DMD_EXPORT(exports, env, "foreachAddcmul", Addcmul);
  DMD_EXPORT(exports, env, "foreachAddcdiv", Addcdiv);
  DMD_EXPORT(exports, env, "foreachSqrt", Sqrt);
  DMD_EXPORT(exports, env, "foreachCopy", Copy);
  DMD_EXPORT(exports, env, "foreachZerosLike", ZerosLike);
  DMD_EXPORT(exports, env, "foreachClone", Clone);
  DMD_EXPORT(exports, env, "foreachAllFinite", AllFinite);
  DMD_EXPORT(exports, env, "clipGradNorm", ClipGradNorm);
}

}  // namespace dmd
