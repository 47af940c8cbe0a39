// Small convolutional heads trained alongside the networks:
//  - "gan": DMD2's classifier on the fake score's encoder bottleneck (conv 4x4/2, GroupNorm, SiLU,
//    conv k x k/k to 1x1, GroupNorm, SiLU, conv 1x1), keys as DMD2's nn.Sequential (0, 1, 3, 4, 6).
//  - "classifier": the feature extractor of `dmd classifier` for Fréchet distances in its own
//    features (three conv stages, global average pool -> features, linear -> logits).

#include "common.h"

namespace dmd {

namespace {

namespace nn = torch::nn;

// GroupNorm groups: 32 as DMD2 (768 channels -> 24 per group), fewer when that would leave under 8
// channels per group (after the 1x1 reduction a group of 1-2 channels would normalise to a constant).
int64_t groupsFor(int64_t channels) {
  for (int64_t g = 32; g > 1; --g)
    if (channels % g == 0 && channels / g >= 8) return g;
  return 1;
}

struct GanHead : nn::Module {
  GanHead(int64_t c, int64_t res) {
    TORCH_CHECK(res >= 2 && res % 2 == 0, "GAN head: the bottleneck resolution must be even and >= 2, got ", res);
    const int64_t k = res / 2;
    // registered under DMD2's nn.Sequential indices (2 and 5 are the parameter-free SiLUs)
    conv0 = register_module("0", nn::Conv2d(nn::Conv2dOptions(c, c, 4).stride(2).padding(1)));
    norm1 = register_module("1", nn::GroupNorm(nn::GroupNormOptions(groupsFor(c), c)));
    conv3 = register_module("3", nn::Conv2d(nn::Conv2dOptions(c, c, k).stride(k)));
    norm4 = register_module("4", nn::GroupNorm(nn::GroupNormOptions(groupsFor(c), c)));
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

struct Classifier : nn::Module {
  Classifier(int64_t in, int64_t classes, int64_t width) {
    auto stage = [&](int64_t i, int64_t o) {
      return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(i, o, 3).padding(1)), nn::GroupNorm(nn::GroupNormOptions(groupsFor(o), o)), nn::SiLU(),
                            nn::Conv2d(nn::Conv2dOptions(o, o, 3).padding(1)), nn::GroupNorm(nn::GroupNormOptions(groupsFor(o), o)), nn::SiLU());
    };
    stage0 = register_module("stage0", stage(in, width));
    stage1 = register_module("stage1", stage(width, width * 2));
    stage2 = register_module("stage2", stage(width * 2, width * 4));
    fc = register_module("fc", nn::Linear(width * 4, classes));
  }
  at::Tensor features(const at::Tensor& x) {
    at::Tensor h = at::max_pool2d(stage0->forward(x), {2, 2});
    h = at::max_pool2d(stage1->forward(h), {2, 2});
    h = stage2->forward(h);
    return h.mean({2, 3});
  }
  nn::Sequential stage0{nullptr}, stage1{nullptr}, stage2{nullptr};
  nn::Linear fc{nullptr};
};

int64_t cfgInt(const Napi::Object& o, const char* k) {
  Napi::Value v = o.Get(k);
  if (!v.IsNumber()) throwType(std::string("head config: '") + k + "' must be a positive integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 1 || d != std::floor(d) || d > 1e6) throwRange(std::string("head config: '") + k + "' must be a positive integer");
  return static_cast<int64_t>(d);
}

// headCreate(kind, config)
Napi::Value Create(const Napi::CallbackInfo& info) {
  std::string kind = stringArg(info, 0);
  if (!info[1].IsObject()) throwType("headCreate: config must be an object");
  Napi::Object c = info[1].As<Napi::Object>();
  if (kind == "gan") {
    auto m = std::make_shared<GanHead>(cfgInt(c, "channels"), cfgInt(c, "resolution"));
    return ModuleHandle::Wrap(info.Env(), m, "gan");
  }
  if (kind == "classifier") {
    auto m = std::make_shared<Classifier>(cfgInt(c, "inChannels"), cfgInt(c, "classes"), cfgInt(c, "width"));
    return ModuleHandle::Wrap(info.Env(), m, "classifier");
  }
  throwType("headCreate: unknown head kind '" + kind + "' (expected gan or classifier)");
}

// headForward(m, x, mode): gan -> logits [N]; classifier: mode "logits" | "features"
Napi::Value Forward(const Napi::CallbackInfo& info) {
  ModuleHandle* h = ModuleHandle::From(info[0]);
  if (!h) throwType("argument 0 must be a head module");
  at::Tensor& x = tensorArg(info, 1);
  std::string mode = isNullish(info[2]) ? "logits" : stringArg(info, 2);
  if (auto* g = dynamic_cast<GanHead*>(h->module().get())) {
    at::Tensor y = g->forward(x.to(at::kFloat));
    TORCH_CHECK(y.size(2) == 1 && y.size(3) == 1, "GAN head: input resolution does not reduce to 1x1 (got ", y.sizes(), ")");
    return wrap(info.Env(), y.flatten());
  }
  if (auto* c = dynamic_cast<Classifier*>(h->module().get())) {
    at::Tensor f = c->features(x.to(at::kFloat));
    if (mode == "features") return wrap(info.Env(), f);
    if (mode != "logits") throwType("classifier mode must be 'logits' or 'features'");
    return wrap(info.Env(), c->fc->forward(f));
  }
  throwType("argument 0 is a '" + h->kind() + "' module, not a head");
}

}  // namespace

void registerHeads(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "headCreate", Create);
  DMD_EXPORT(exports, env, "headForward", Forward);
}

}  // namespace dmd
