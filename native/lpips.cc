// LPIPS v0.1 with a VGG16 backbone (Zhang et al. 2018): torchvision's `features` layout and key names,
// the lpips package's linear heads `lin{k}.model.1.weight`. Differentiable in both inputs; the
// network may run in bfloat16/float16 (weights cast at use, fp32 masters).
#include "common.h"

namespace dmd {

namespace {

// torchvision vgg16().features: conv indices and channels; ReLU after each conv, max-pool at 4, 9,
// 16, 23. LPIPS taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (after conv 2, 7, 14, 21, 28).
struct ConvSpec { int index; int in; int out; };
const ConvSpec kConvs[] = {{0, 3, 64},     {2, 64, 64},    {5, 64, 128},   {7, 128, 128},  {10, 128, 256},
                           {12, 256, 256}, {14, 256, 256}, {17, 256, 512}, {19, 512, 512}, {21, 512, 512},
                           {24, 512, 512}, {26, 512, 512}, {28, 512, 512}};
const int kTaps[] = {2, 7, 14, 21, 28};
const int kPools[] = {4, 9, 16, 23};
const int kTapChannels[] = {64, 128, 256, 512, 512};

struct Holder : torch::nn::Module {};

struct LPIPS : torch::nn::Module {
  LPIPS() {
    features = register_module("features", std::make_shared<Holder>());
    for (const auto& c : kConvs) {
      auto h = features->register_module(std::to_string(c.index), std::make_shared<Holder>());
      weights.push_back(h->register_parameter("weight", torch::zeros({c.out, c.in, 3, 3})));
      biases.push_back(h->register_parameter("bias", torch::zeros({c.out})));
    }
    for (int k = 0; k < 5; ++k) {
      auto lin = register_module("lin" + std::to_string(k), std::make_shared<Holder>());
      auto model = lin->register_module("model", std::make_shared<Holder>());
      auto one = model->register_module("1", std::make_shared<Holder>());
      lins.push_back(one->register_parameter("weight", torch::zeros({1, kTapChannels[k], 1, 1})));
    }
  }

  // Per-image distance [N] between x0 and x1 in [-1, 1].
  at::Tensor forward(const at::Tensor& x0, const at::Tensor& x1, int64_t resize, at::ScalarType dtype) {
    TORCH_CHECK(x0.dim() == 4 && x0.size(1) == 3, "LPIPS inputs must be [N, 3, H, W] images in [-1, 1], got ", x0.sizes());
    TORCH_CHECK(x0.sizes() == x1.sizes(), "LPIPS inputs differ in shape: ", x0.sizes(), " vs ", x1.sizes());
    auto prep = [&](const at::Tensor& x) {
      at::Tensor y = x.to(at::kFloat);
      if (resize > 0)
        y = torch::nn::functional::interpolate(
            y, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{resize, resize}).mode(torch::kBilinear).align_corners(false));
      const auto opts = y.options();
      at::Tensor shift = torch::tensor({-.030, -.088, -.188}, opts).reshape({1, 3, 1, 1});
      at::Tensor scale = torch::tensor({.458, .448, .450}, opts).reshape({1, 3, 1, 1});
      return ((y - shift) / scale).to(dtype);
    };
    // both images through the backbone in one batch
    at::Tensor h = at::cat({prep(x0), prep(x1)}, 0);
    const int64_t n = x0.size(0);
    at::Tensor total;
    size_t conv = 0;
    int tap = 0;
    for (int layer = 0; layer <= 28; ++layer) {
      if (conv < std::size(kConvs) && kConvs[conv].index == layer) {
        h = at::relu(at::conv2d(h, weights[conv].to(h.scalar_type()), biases[conv].to(h.scalar_type()), 1, 1));
        ++conv;
        if (tap < 5 && kTaps[tap] == layer) {
          at::Tensor f = h.to(at::kFloat);
          at::Tensor norm = f.square().sum(1, true).sqrt();
          at::Tensor u = f / (norm + 1e-10);
          at::Tensor d = (u.slice(0, 0, n) - u.slice(0, n)).square();
          at::Tensor v = at::conv2d(d, lins[tap]).mean({2, 3}, true);
          total = total.defined() ? total + v : v;
          ++tap;
        }
      } else if (std::find(std::begin(kPools), std::end(kPools), layer) != std::end(kPools)) {
        h = at::max_pool2d(h, {2, 2}, {2, 2});
      }
    }
    return total.reshape({n});
  }

  std::shared_ptr<Holder> features;
  std::vector<at::Tensor> weights, biases, lins;
};

Napi::Value Create(const Napi::CallbackInfo& info) { return ModuleHandle::Wrap(info.Env(), std::make_shared<LPIPS>(), "LPIPS"); }

// lpipsForward(m, x0, x1, resize, dtype)
Napi::Value Forward(const Napi::CallbackInfo& info) {
  LPIPS* m = &moduleArg<LPIPS>(info, 0, "an LPIPS");
  at::ScalarType dt = isNullish(info[4]) ? at::kFloat : dtypeArg(info, 4);
  int64_t resize = intArgOr(info, 3, 0);
  if (resize < 0 || resize > 4096) throwRange("LPIPS resize must be 0 (none) or a size up to 4096");
  return wrap(info.Env(), m->forward(tensorArg(info, 1), tensorArg(info, 2), resize, dt));
}

}  // namespace

void registerLPIPS(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "lpipsCreate", Create);
  DMD_EXPORT(exports, env, "lpipsForward", Forward);
}

}  // namespace dmd
