// The transformer block both CLIP towers are built from (openai CLIP's ResidualAttentionBlock): pre-
// LayerNorm multi-head self-attention (causal in the text tower, full in the vision tower) and an MLP
// with QuickGELU, each added to the residual stream. Parameters carry Hugging Face's CLIP names
// (self_attn.{q,k,v,out}_proj, layer_norm1, mlp.fc1, mlp.fc2, layer_norm2), as SD v1 files store the
// text encoder; openai/open_clip state dicts are renamed to them when loaded (src/metrics/clip-score.ts).
#pragma once
#include "sd_layers.h"

namespace dmd::sd {

struct ClipLinear : torch::nn::Module {
  ClipLinear(int64_t in, int64_t out, double std);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight, bias;
};

// openai CLIP's initialisation of a block of a `layers`-deep tower of this width.
struct ClipBlock : torch::nn::Module {
  ClipBlock(int64_t width, int64_t heads, int64_t layers, bool causal);
  at::Tensor forward(const at::Tensor& x);
  int64_t heads;
  bool causal;
  std::shared_ptr<ClipLinear> q, k, v, out, fc1, fc2;
  std::shared_ptr<LayerNorm> ln1, ln2;
};

}  // namespace dmd::sd
