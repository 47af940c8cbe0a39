// Autograd: requires_grad, backward, .grad, grad mode, and torch.autograd.grad.
#include "common.h"

namespace dmd {

namespace {

Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  bool on = boolArgOr(info, 1, true);
  if (on && !(at::isFloatingType(t.scalar_type()) || at::isComplexType(t.scalar_type())))
    throwType(std::string("only floating-point tensors can require gradients, this one is ") + c10::toString(t.scalar_type()));
  if (!t.is_leaf() && !on) throwType("requiresGrad(false) is only allowed on leaf tensors; use detach() instead");
  t.set_requires_grad(on);
  return info.Env().Undefined();
}

Napi::Value RequiresGrad(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), tensorArg(info, 0).requires_grad()); }
Napi::Value IsLeaf(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), tensorArg(info, 0).is_leaf()); }

// backward(t, grad|null, retainGraph, createGraph)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  if (!t.requires_grad()) throwType("backward(): this tensor does not require grad (nothing in its graph requires grad, or it was computed under noGrad)");
  auto g = optTensorArg(info, 1);
  if (!g && t.numel() != 1)
    throwType("backward(): a gradient can be created implicitly only for a single-element output; pass grad for a tensor of " +
              std::to_string(t.numel()) + " elements");
  bool create = boolArgOr(info, 3, false);
  c10::optional<bool> retain;
  if (!isNullish(info[2])) retain = boolArgOr(info, 2, false);
  t.backward(g ? *g : at::Tensor(), retain, create);
  return info.Env().Undefined();
}

Napi::Value Grad(const Napi::CallbackInfo& info) { return wrapOptional(info.Env(), tensorArg(info, 0).grad()); }

// setGrad(t, g|null)
Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  auto g = optTensorArg(info, 1);
  if (g && !g->sizes().equals(t.sizes())) throwRange("setGrad: gradient shape does not match the tensor");
  t.mutable_grad() = g ? *g : at::Tensor();
  return info.Env().Undefined();
}

Napi::Value RetainGrad(const Napi::CallbackInfo& info) {
  tensorArg(info, 0).retain_grad();
  return info.Env().Undefined();
}

Napi::Value GradEnabled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled()); }
Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  at::GradMode::set_enabled(boolArgOr(info, 0, true));
  return info.Env().Undefined();
}

// autogradGrad(outputs, inputs, gradOutputs|null, retainGraph|null, createGraph, allowUnused) -> (Tensor|null)[]
Napi::Value AutogradGrad(const Napi::CallbackInfo& info) {
  std::vector<at::Tensor> outs = tensorListArg(info, 0);
  std::vector<at::Tensor> ins = tensorListArg(info, 1);
  std::vector<at::Tensor> gouts;
  if (!isNullish(info[2])) gouts = tensorListArg(info, 2);
  if (!gouts.empty() && gouts.size() != outs.size()) throwRange("autograd.grad: gradOutputs must have one entry per output");
  for (size_t i = 0; i < outs.size(); ++i) {
    if (!outs[i].requires_grad()) throwType("autograd.grad: output " + std::to_string(i) + " does not require grad");
    if (gouts.empty() && outs[i].numel() != 1)
      throwType("autograd.grad: output " + std::to_string(i) + " has " + std::to_string(outs[i].numel()) + " elements; pass gradOutputs");
  }
  c10::optional<bool> retain;
  if (!isNullish(info[3])) retain = boolArgOr(info, 3, false);
  auto r = torch::autograd::grad(outs, ins, gouts, retain, boolArgOr(info, 4, false), boolArgOr(info, 5, false));
  return wrapList(info.Env(), r);
}

}  // namespace

void registerAutograd(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "setRequiresGrad", SetRequiresGrad);
  DMD_EXPORT(exports, env, "requiresGrad", RequiresGrad);
  DMD_EXPORT(exports, env, "isLeaf", IsLeaf);
  DMD_EXPORT(exports, env, "backward", Backward);
  DMD_EXPORT(exports, env, "grad", Grad);
  DMD_EXPORT(exports, env, "setGrad", SetGrad);
  DMD_EXPORT(exports, env, "retainGrad", RetainGrad);
  DMD_EXPORT(exports, env, "gradEnabled", GradEnabled);
  DMD_EXPORT(exports, env, "setGradEnabled", SetGradEnabled);
  DMD_EXPORT(exports, env, "autogradGrad", AutogradGrad);
}

}  // namespace dmd
