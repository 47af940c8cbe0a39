// DMD2's GAN classifier head on the fake score's encoder bottleneck: conv 4x4/2, GroupNorm, SiLU,
// conv k x k/k to 1x1, GroupNorm, SiLU, conv 1x1 -> one realism logit per image. Parameter names are
// those of DMD2's nn.Sequential (0, 1, 3, 4, 6).
#include "common.h"
#include "group_norm.h"

namespace dmd {

namespace {

namespace nn = torch::nn;

struct GanHead : nn::Module {
  GanHead(int64_t c, int64_t res) {
    TORCH_CHECK(res >= 2 && res % 2 == 0, "GAN head: the bottleneck resolution must be even and >= 2, got ", res);
    const int64_t k = res / 2;
    // registered under DMD2's nn.Sequential indices (2 and 5 are the parameter-free SiLUs)
    conv0 = register_module("0", nn::Conv2d(nn::Conv2dOptions(c, c, 4).stride(2).padding(1)));
    norm1 = register_module("1", nn::GroupNorm(nn::GroupNormOptions(headGroups(c), c)));
    conv3 = register_module("3", nn::Conv2d(nn::Conv2dOptions(c, c, k).stride(k)));
    norm4 = register_module("4", nn::GroupNorm(nn::GroupNormOptions(headGroups(c), c)));
    conv6 = register_module("6", nn::Conv2d(nn::Conv2dOptions(c, 1, 1)));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = at::silu(norm1->forward(conv0->forward(x)));
    h = at::silu(norm4->forward(conv3->forward(h)));
    return conv6->forward(h);
  }
  nn::Conv2d conv0{nullptr}, conv3{nullptr}, conv6{nullptr};
  nn::GroupNorm norm1{nullptr}, norm4{nullptr};
};

// ganHeadCreate({channels, resolution})
Napi::Value Create(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) throwType("ganHeadCreate: config must be an object");
  Napi::Object c = info[0].As<Napi::Object>();
  return ModuleHandle::Wrap(info.Env(), std::make_shared<GanHead>(positiveField(c, "channels", "GAN head"), positiveField(c, "resolution", "GAN head")), "gan-head");
}

// ganHeadForward(m, features) -> logits [N]
Napi::Value Forward(const Napi::CallbackInfo& info) {
  GanHead& g = moduleArg<GanHead>(info, 0, "a GAN head");
  at::Tensor y = g.forward(tensorArg(info, 1).to(at::kFloat));
  TORCH_CHECK(y.size(2) == 1 && y.size(3) == 1, "GAN head: input resolution does not reduce to 1x1 (got ", y.sizes(), ")");
  return wrap(info.Env(), y.flatten());
}

}  // namespace

void registerGanHead(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "ganHeadCreate", Create);
  DMD_EXPORT(exports, env, "ganHeadForward", Forward);
}

}  // namespace dmd
