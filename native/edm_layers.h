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

struct LinearOptions {
  bool bias_ = true;
  Init init_;
  LinearOptions& bias(bool b) { bias_ = b; return *this; }
  LinearOptions& init(const Init& i) { init_ = i; return *this; }
};

struct Linear : torch::nn::Module {
  Linear(int64_t in, int64_t out, const LinearOptions& o = {});
  at::Tensor forward(const at::Tensor& x);
  int64_t in_features, out_features;
  at::Tensor weight, bias;
};

// kernel 0 = no weight (a pure FIR resampler); up/down resample by 2 with the FIR filter, fused with
// the convolution when fused() (EDM's fused_resample).
struct ConvOptions {
  bool bias_ = true, up_ = false, down_ = false, fused_ = false;
  std::vector<double> filter_{1, 1};
  Init init_;
  ConvOptions& bias(bool b) { bias_ = b; return *this; }
  ConvOptions& up(bool b = true) { up_ = b; return *this; }
  ConvOptions& down(bool b = true) { down_ = b; return *this; }
  ConvOptions& fused(bool b = true) { fused_ = b; return *this; }
  ConvOptions& filter(const std::vector<double>& f) { filter_ = f; return *this; }
  ConvOptions& init(const Init& i) { init_ = i; return *this; }
};

struct Conv2d : torch::nn::Module {
  Conv2d(int64_t in, int64_t out, int64_t kernel, const ConvOptions& o = {});
  at::Tensor forward(const at::Tensor& x);
  int64_t in_channels, out_channels;
  bool up, down, fused;
  // the filter is [1, 1] (EDM's default): resampling is 2x2 averaging down and nearest-neighbour up
  bool box_filter = false;
  at::Tensor weight, bias, resample_filter;
};

struct GroupNorm : torch::nn::Module {
  GroupNorm(int64_t channels, double eps, int64_t num_groups = 32, int64_t min_channels_per_group = 4);
  at::Tensor forward(const at::Tensor& x);
  int64_t groups;
  double eps;
  at::Tensor weight, bias;
};

// The options of EDM's UNetBlock: shared ones per network, plus what differs per block (resampling,
// attention), set on a copy with upsampling() / downsampling() / attention(on).
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
  bool up = false, down = false, attn = false;
  BlockOptions upsampling() const { BlockOptions c = *this; c.up = true; return c; }
  BlockOptions downsampling() const { BlockOptions c = *this; c.down = true; return c; }
  BlockOptions attention(bool on = true) const { BlockOptions c = *this; c.attn = on; return c; }
};

struct UNetBlock : torch::nn::Module {
  UNetBlock(int64_t in, int64_t out, const BlockOptions& o);
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
