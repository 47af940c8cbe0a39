// CLIP's image tower (openai CLIP's VisionTransformer; what a CLIP score compares text with): the image
// cut into patch x patch squares by a stride-`patch` convolution without bias, a learned class token in
// front, learned position embeddings, a LayerNorm, `layers` blocks of full self-attention (clip_layers.h),
// and the class token's final LayerNorm as the pooled output [B, width]; the projection to the joint
// embedding is applied by the caller. Hugging Face CLIPVisionModel's parameter names
// (embeddings.patch_embedding, embeddings.class_embedding, embeddings.position_embedding, pre_layrnorm,
// encoder.layers.N, post_layernorm). The N-API surface: clipVisionCreate(config), clipVisionForward(m, pixels, options).
#include <cmath>

#include "clip_layers.h"

namespace dmd::sd {

namespace {

struct Config {
  int64_t image_size = 224, patch_size = 32, width = 768, heads = 12, layers = 12;
};

struct CLIPVision : torch::nn::Module {
  explicit CLIPVision(const Config& c_) : c(c_) {
    const int64_t grid = c.image_size / c.patch_size;
    const double scale = std::pow(static_cast<double>(c.width), -0.5);
    auto emb = register_module("embeddings", std::make_shared<torch::nn::Module>());
    auto patch = emb->register_module("patch_embedding", std::make_shared<torch::nn::Module>());
    patch_weight = patch->register_parameter("weight", uniformInit({c.width, 3, c.patch_size, c.patch_size}, 3 * c.patch_size * c.patch_size));
    class_embedding = emb->register_parameter("class_embedding", normalInit({c.width}, scale));
    auto pos = emb->register_module("position_embedding", std::make_shared<torch::nn::Module>());
    position = pos->register_parameter("weight", normalInit({grid * grid + 1, c.width}, scale));
    pre_ln = register_module("pre_layrnorm", std::make_shared<LayerNorm>(c.width, 1e-5));
    auto enc = register_module("encoder", std::make_shared<torch::nn::Module>());
    auto layers = enc->register_module("layers", std::make_shared<torch::nn::Module>());
    for (int64_t i = 0; i < c.layers; ++i) blocks.push_back(layers->register_module(std::to_string(i), std::make_shared<ClipBlock>(c.width, c.heads, c.layers, /*causal=*/false)));
    post_ln = register_module("post_layernorm", std::make_shared<LayerNorm>(c.width, 1e-5));
  }
  at::Tensor forward(const at::Tensor& pixels, at::ScalarType dtype) {
    const int64_t n = pixels.size(0);
    at::Tensor x = at::conv2d(pixels.to(dtype), patch_weight.to(dtype), {}, c.patch_size);  // [N, width, grid, grid]
    x = x.flatten(2).transpose(1, 2);                                                       // [N, grid^2, width]
    x = at::cat({class_embedding.to(dtype).expand({n, 1, c.width}), x}, 1) + position.to(dtype);
    x = pre_ln->forward(x);
    for (auto& b : blocks) x = b->forward(x);
    return post_ln->forward(x.select(1, 0)).to(at::kFloat);
  }
  Config c;
  at::Tensor patch_weight, class_embedding, position;
  std::shared_ptr<LayerNorm> pre_ln, post_ln;
  std::vector<std::shared_ptr<ClipBlock>> blocks;
};

// clipVisionCreate({image_size, patch_size, width, heads, layers, init})
Napi::Value Create(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) throwType("clipVisionCreate: config must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  Config c;
  c.image_size = positiveField(o, "image_size", "CLIP vision config");
  c.patch_size = positiveField(o, "patch_size", "CLIP vision config");
  c.width = positiveField(o, "width", "CLIP vision config");
  c.heads = positiveField(o, "heads", "CLIP vision config");
  c.layers = positiveField(o, "layers", "CLIP vision config");
  if (c.width % c.heads) throwRange("CLIP vision config: width " + std::to_string(c.width) + " does not split into " + std::to_string(c.heads) + " heads");
  if (c.image_size % c.patch_size) throwRange("CLIP vision config: image_size " + std::to_string(c.image_size) + " is not a multiple of patch_size " + std::to_string(c.patch_size));
  SkipInit skip(o.Get("init").IsBoolean() && !o.Get("init").As<Napi::Boolean>().Value());
  return ModuleHandle::Wrap(info.Env(), std::make_shared<CLIPVision>(c), "CLIPVision");
}

// clipVisionForward(m, pixels float [B, 3, image_size, image_size] (CLIP-normalised), {dtype}) -> pooled float32 [B, width]
Napi::Value Forward(const Napi::CallbackInfo& info) {
  CLIPVision& m = moduleArg<CLIPVision>(info, 0, "a CLIP image encoder");
  at::Tensor& pixels = tensorArg(info, 1);
  at::ScalarType dtype = executionDtype(info[2], 2, "clipVisionForward");
  if (pixels.dim() != 4 || pixels.size(1) != 3 || pixels.size(2) != m.c.image_size || pixels.size(3) != m.c.image_size)
    throwRange("clipVisionForward: pixels must be [B, 3, " + std::to_string(m.c.image_size) + ", " + std::to_string(m.c.image_size) + "], got " + c10::str(pixels.sizes()));
  if (!at::isFloatingType(pixels.scalar_type())) throwType("clipVisionForward: pixels must be floating point");
  return wrap(info.Env(), m.forward(pixels, dtype));
}

}  // namespace

}  // namespace dmd::sd

namespace dmd {
void registerCLIPVision(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "clipVisionCreate", sd::Create);
  DMD_EXPORT(exports, env, "clipVisionForward", sd::Forward);
}
}  // namespace dmd
