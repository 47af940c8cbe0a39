// openai CLIP's residual attention block, shared by the text tower (clip_text.cc) and the vision
// tower (clip_vision.cc); see clip_layers.h.
#include "clip_layers.h"

#include <cmath>

namespace dmd::sd {

// openai CLIP's initialisation: weights normal with the stds of CLIP.initialize_parameters, biases zero
ClipLinear::ClipLinear(int64_t in, int64_t out, double std) {
  weight = register_parameter("weight", normalInit({out, in}, std));
  bias = register_parameter("bias", torch::zeros({out}));
}

at::Tensor ClipLinear::forward(const at::Tensor& x) { return at::linear(x, weight.to(x.scalar_type()), bias.to(x.scalar_type())); }

ClipBlock::ClipBlock(int64_t width, int64_t heads_, int64_t layers, bool causal_) : heads(heads_), causal(causal_) {
  const double attn_std = std::pow(static_cast<double>(width), -0.5);
  const double proj_std = attn_std * std::pow(2.0 * static_cast<double>(layers), -0.5);
  const double fc_std = std::pow(2.0 * static_cast<double>(width), -0.5);
  auto attn = register_module("self_attn", std::make_shared<torch::nn::Module>());
  q = attn->register_module("q_proj", std::make_shared<ClipLinear>(width, width, attn_std));
  k = attn->register_module("k_proj", std::make_shared<ClipLinear>(width, width, attn_std));
  v = attn->register_module("v_proj", std::make_shared<ClipLinear>(width, width, attn_std));
  out = attn->register_module("out_proj", std::make_shared<ClipLinear>(width, width, proj_std));
  ln1 = register_module("layer_norm1", std::make_shared<LayerNorm>(width, 1e-5));
  auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
  fc1 = mlp->register_module("fc1", std::make_shared<ClipLinear>(width, width * 4, fc_std));
  fc2 = mlp->register_module("fc2", std::make_shared<ClipLinear>(width * 4, width, proj_std));
  ln2 = register_module("layer_norm2", std::make_shared<LayerNorm>(width, 1e-5));
}

at::Tensor ClipBlock::forward(const at::Tensor& x_in) {
  at::Tensor h = ln1->forward(x_in);
  at::Tensor x = x_in + out->forward(attention(q->forward(h), k->forward(h), v->forward(h), heads, causal));
  at::Tensor m = fc1->forward(ln2->forward(x));
  m = m * at::sigmoid(m * 1.702);  // QuickGELU
  return x + fc2->forward(m);
}

}  // namespace dmd::sd
