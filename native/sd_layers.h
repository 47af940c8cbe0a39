// The layers the Stable Diffusion v1 family is built from (CompVis/stable-diffusion's ldm and openai
// CLIP): linear, convolution, GroupNorm and LayerNorm with PyTorch's parameter names and default
// initialisation, multi-head attention (scaled_dot_product_attention where libtorch has it, the exact
// softmax(q k^T / sqrt(d)) v otherwise), and activation checkpointing of a block. Weights are cast to
// the activation dtype at use, so fp32 master weights drive bf16/fp16 execution; GroupNorm computes in
// float32 as ldm's GroupNorm32 does.
#pragma once
#include <functional>

#include "common.h"

namespace dmd::sd {

// PyTorch's default initialisation of Linear/Conv2d (kaiming_uniform with a = sqrt(5): U(+-1/sqrt(fan_in))
// for weight and bias), or zeros (ldm's zero_module), from libtorch's default generator; normalInit for
// embeddings (CLIP's).
at::Tensor uniformInit(at::IntArrayRef shape, int64_t fan_in);
at::Tensor normalInit(at::IntArrayRef shape, double std);

// While alive, new weights are left uninitialised (a module whose weights are about to be loaded).
struct SkipInit {
  explicit SkipInit(bool on);
  ~SkipInit();
  bool previous;
};
bool skippingInit();

struct Linear : torch::nn::Module {
  Linear(int64_t in, int64_t out, bool bias = true, bool zero = false);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight, bias;
};

struct Conv2d : torch::nn::Module {
  Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0, bool zero = false);
  at::Tensor forward(const at::Tensor& x);
  int64_t stride, padding;
  at::Tensor weight, bias;
};

struct GroupNorm : torch::nn::Module {
  GroupNorm(int64_t channels, double eps, int64_t groups = 32);
  at::Tensor forward(const at::Tensor& x);
  int64_t groups;
  double eps;
  at::Tensor weight, bias;
};

struct LayerNorm : torch::nn::Module {
  LayerNorm(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);
  int64_t dim;
  double eps;
  at::Tensor weight, bias;
};

// Attention over [B, L, heads * d] tensors (q from Lq positions, k and v from Lk), d^-0.5 scaling;
// `causal`: position i sees positions 0..i (CLIP's text mask).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads, bool causal = false);

// Runs fn(inputs) keeping none of its activations for backward: they are recomputed from the saved
// inputs when the gradient is needed (PyTorch's reentrant torch.utils.checkpoint). Gradients reach the
// inputs that require them and the parameters fn uses. fn must be deterministic (no dropout).
using BlockFn = std::function<at::Tensor(const std::vector<at::Tensor>&)>;
at::Tensor checkpointed(const BlockFn& fn, const std::vector<at::Tensor>& inputs);

// The execution dtype of an options object's `dtype` (float32 when absent); float32/float16/bfloat16 only.
at::ScalarType executionDtype(const Napi::Value& options, size_t argIndex, const char* what);

}  // namespace dmd::sd
