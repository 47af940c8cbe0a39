// The CLIP text encoder Stable Diffusion v1 conditions on (openai CLIP's text transformer, ViT-L/14's
// in SD v1): token + position embedding, pre-LayerNorm blocks of causal self-attention (token i sees
// tokens 0..i) and an MLP with QuickGELU, then the final LayerNorm; the whole last hidden state
// [B, L, width] is the conditioning. Parameters carry Hugging Face CLIPTextModel's names, as SD v1
// single-file checkpoints store them (encoder.layers.0.self_attn.q_proj.weight, ...).
// The N-API surface: clipTextCreate(config), clipTextForward(m, tokens, options).
#include "clip_layers.h"

namespace dmd::sd {

namespace {

struct Config {
  int64_t vocab_size = 49408, context_length = 77, width = 768, heads = 12, layers = 12;
};

struct CLIPText : torch::nn::Module {
  explicit CLIPText(const Config& c_) : c(c_) {
    auto emb = register_module("embeddings", std::make_shared<torch::nn::Module>());
    auto tok = emb->register_module("token_embedding", std::make_shared<torch::nn::Module>());
    token = tok->register_parameter("weight", normalInit({c.vocab_size, c.width}, 0.02));
    auto pos = emb->register_module("position_embedding", std::make_shared<torch::nn::Module>());
    position = pos->register_parameter("weight", normalInit({c.context_length, c.width}, 0.01));
    auto enc = register_module("encoder", std::make_shared<torch::nn::Module>());
    auto layers = enc->register_module("layers", std::make_shared<torch::nn::Module>());
    for (int64_t i = 0; i < c.layers; ++i) blocks.push_back(layers->register_module(std::to_string(i), std::make_shared<ClipBlock>(c.width, c.heads, c.layers, /*causal=*/true)));
    final_ln = register_module("final_layer_norm", std::make_shared<LayerNorm>(c.width, 1e-5));
  }
  at::Tensor forward(const at::Tensor& tokens, at::ScalarType dtype) {
    const int64_t l = tokens.size(1);
    at::Tensor x = at::embedding(token.to(dtype), tokens) + position.narrow(0, 0, l).to(dtype);
    for (auto& b : blocks) x = b->forward(x);
    return final_ln->forward(x).to(at::kFloat);
  }
  Config c;
  at::Tensor token, position;
  std::vector<std::shared_ptr<ClipBlock>> blocks;
  std::shared_ptr<LayerNorm> final_ln;
};

// clipTextCreate({vocab_size, context_length, width, heads, layers})
Napi::Value Create(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) throwType("clipTextCreate: config must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  Config c;
  c.vocab_size = positiveField(o, "vocab_size", "CLIP text config");
  c.context_length = positiveField(o, "context_length", "CLIP text config");
  c.width = positiveField(o, "width", "CLIP text config");
  c.heads = positiveField(o, "heads", "CLIP text config");
  c.layers = positiveField(o, "layers", "CLIP text config");
  if (c.width % c.heads) throwRange("CLIP text config: width " + std::to_string(c.width) + " does not split into " + std::to_string(c.heads) + " heads");
  SkipInit skip(o.Get("init").IsBoolean() && !o.Get("init").As<Napi::Boolean>().Value());
  return ModuleHandle::Wrap(info.Env(), std::make_shared<CLIPText>(c), "CLIPText");
}

// clipTextForward(m, tokens int64 [B, L <= context_length], {dtype}) -> last hidden state float32 [B, L, width]
Napi::Value Forward(const Napi::CallbackInfo& info) {
  CLIPText& m = moduleArg<CLIPText>(info, 0, "a CLIP text encoder");
  at::Tensor& tokens = tensorArg(info, 1);
  at::ScalarType dtype = executionDtype(info[2], 2, "clipTextForward");
  if (tokens.dim() != 2 || tokens.size(1) > m.c.context_length || tokens.size(1) < 1)
    throwRange("clipTextForward: tokens must be [B, L] with 1 <= L <= " + std::to_string(m.c.context_length) + ", got " + c10::str(tokens.sizes()));
  if (tokens.scalar_type() != at::kLong && tokens.scalar_type() != at::kInt) throwType("clipTextForward: tokens must be int64 (or int32) ids");
  if (tokens.numel()) {
    const int64_t lo = tokens.min().item<int64_t>(), hi = tokens.max().item<int64_t>();
    if (lo < 0 || hi >= m.c.vocab_size) throwRange("clipTextForward: token ids must lie in 0.." + std::to_string(m.c.vocab_size - 1) + ", got " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return wrap(info.Env(), m.forward(tokens.to(at::kLong), dtype));
}

}  // namespace

}  // namespace dmd::sd

namespace dmd {
void registerCLIPText(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "clipTextCreate", sd::Create);
  DMD_EXPORT(exports, env, "clipTextForward", sd::Forward);
}
}  // namespace dmd
