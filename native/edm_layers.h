// The building blocks of EDM's networks (NVlabs/edm training/networks.py): Linear, Conv2d with
// optional FIR up/downsampling, GroupNorm, the unified UNetBlock and the two noise embeddings.
// Parameter and buffer names are EDM's, so state dicts convert without renaming. Weights are cast
// to the activation dtype at use, as EDM does, so fp32 master weights drive fp16/bf16 execution.
#pragma once
#include "common.h"

namespace dmd::edm {

// EDM's weight_init(): the random initialisation of a fresh network (drawn from libtorch's default
// generator, so torch.manual_seed / manualSeed makes it reproducible).
struct Init {
  enum Mode { XavierUniform, XavierNormal, KaimingUniform, KaimingNormal } mode = KaimingNormal;
  double weight = 1, bias = 0;
};
at::Tensor weightInit(at::IntArrayRef shape, const Init& init, int64_t fan_in, int64_t fan_out);

struct Linear : torch::nn::Module {
  Linear(int64_t in, int64_t out, bool bias, const Init& init = {});
  at::Tensor forward(const at::Tensor& x);
  int64_t in_features, out_features;
  at::Tensor weight, bias;
};

struct Conv2d : torch::nn::Module {
  Conv2d(int64_t in, int64_t out, int64_t kernel, bool bias, bool up, bool down, const std::vector<double>& resample_filter,
         bool fused_resample, const Init& init = {});
  at::Tensor forward(const at::Tensor& x);
  int64_t in_channels, out_channels;
  bool up, down, fused;
  at::Tensor weight, bias, resample_filter;
};

struct GroupNorm : torch::nn::Module {
  GroupNorm(int64_t channels, double eps, int64_t num_groups = 32, int64_t min_channels_per_group = 4);
  at::Tensor forward(const at::Tensor& x);
  int64_t groups;
  double eps;
  at::Tensor weight, bias;
};

struct BlockOptions {
  int64_t emb_channels = 0;
  int64_t num_heads = -1;          // -1: out_channels / channels_per_head
  int64_t channels_per_head = 64;
  double dropout = 0;
  double skip_scale = 1;
  double eps = 1e-5;
  std::vector<double> resample_filter{1, 1};
  bool resample_proj = false;
  bool adaptive_scale = true;
  Init init, init_zero{Init::KaimingNormal, 0, 0};
  c10::optional<Init> init_attn;
};

struct UNetBlock : torch::nn::Module {
  UNetBlock(int64_t in, int64_t out, bool up, bool down, bool attention, const BlockOptions& o);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& emb);
  int64_t in_channels, out_channels, num_heads;
  double dropout, skip_scale;
  bool adaptive_scale;
  std::shared_ptr<GroupNorm> norm0, norm1, norm2;
  std::shared_ptr<Conv2d> conv0, conv1, skip, qkv, proj;
  std::shared_ptr<Linear> affine;
};

// softmax(q^T k / sqrt(c)) v over [N, C, L] tensors, computed like EDM's AttentionOp (fp32 weights)
// or with scaled_dot_product_attention where libtorch has it.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

at::Tensor positionalEmbedding(const at::Tensor& x, int64_t channels, int64_t max_positions, bool endpoint);
at::Tensor fourierEmbedding(const at::Tensor& x, const at::Tensor& freqs);

}  // namespace dmd::edm
