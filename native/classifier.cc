// The evaluation classifier of `dmd classifier`: three conv stages (conv, GroupNorm, SiLU twice), max
// pools between them, a global average pool giving the features of FD-<name>, and a linear layer
// giving the class logits.
#include "common.h"
#include "group_norm.h"

namespace dmd {

namespace {

namespace nn = torch::nn;

struct Classifier : nn::Module {
  Classifier(int64_t in, int64_t classes, int64_t width) {
    auto stage = [&](int64_t i, int64_t o) {
      return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(i, o, 3).padding(1)), nn::GroupNorm(nn::GroupNormOptions(headGroups(o), o)), nn::SiLU(),
                            nn::Conv2d(nn::Conv2dOptions(o, o, 3).padding(1)), nn::GroupNorm(nn::GroupNormOptions(headGroups(o), o)), nn::SiLU());
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

// classifierCreate({inChannels, classes, width})
Napi::Value Create(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) throwType("classifierCreate: config must be an object");
  Napi::Object c = info[0].As<Napi::Object>();
  return ModuleHandle::Wrap(info.Env(), std::make_shared<Classifier>(positiveField(c, "inChannels", "classifier"), positiveField(c, "classes", "classifier"), positiveField(c, "width", "classifier")), "classifier");
}

// classifierFeatures(m, images) -> [N, 4 width]
Napi::Value Features(const Napi::CallbackInfo& info) {
  Classifier& c = moduleArg<Classifier>(info, 0, "a classifier");
  return wrap(info.Env(), c.features(tensorArg(info, 1).to(at::kFloat)));
}

// classifierLogits(m, images) -> [N, classes]
Napi::Value Logits(const Napi::CallbackInfo& info) {
  Classifier& c = moduleArg<Classifier>(info, 0, "a classifier");
  return wrap(info.Env(), c.fc->forward(c.features(tensorArg(info, 1).to(at::kFloat))));
}

}  // namespace

void registerClassifier(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "classifierCreate", Create);
  DMD_EXPORT(exports, env, "classifierFeatures", Features);
  DMD_EXPORT(exports, env, "classifierLogits", Logits);
}

}  // namespace dmd
