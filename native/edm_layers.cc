#include "edm_layers.h"

#include <cmath>

namespace dmd::edm {

namespace {
at::Tensor cast(const at::Tensor& t, const at::Tensor& like) { return t.scalar_type() == like.scalar_type() ? t : t.to(like.scalar_type()); }
using IntList = std::vector<int64_t>;
at::Tensor conv(const at::Tensor& x, const at::Tensor& w, int64_t stride, int64_t pad, int64_t groups = 1) {
  return at::conv2d(x, w, {}, IntList{stride, stride}, IntList{pad, pad}, IntList{1, 1}, groups);
}
at::Tensor convT(const at::Tensor& x, const at::Tensor& w, int64_t pad, int64_t groups) {
  // libtorch's CPU transposed convolution has no 16-bit kernels: run those in float32 and cast back.
  if (x.device().is_cpu() && (x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf))
    return convT(x.to(at::kFloat), w.to(at::kFloat), pad, groups).to(x.scalar_type());
  return at::conv_transpose2d(x, w, {}, IntList{2, 2}, IntList{pad, pad}, IntList{0, 0}, groups);
}
}  // namespace

at::Tensor weightInit(at::IntArrayRef shape, const Init& init, int64_t fan_in, int64_t fan_out) {
  at::NoGradGuard ng;
  const double fi = static_cast<double>(fan_in), fo = static_cast<double>(fan_out);
  switch (init.mode) {
    case Init::XavierUniform: return std::sqrt(6 / (fi + fo)) * (torch::rand(shape) * 2 - 1);
    case Init::XavierNormal: return std::sqrt(2 / (fi + fo)) * torch::randn(shape);
    case Init::KaimingUniform: return std::sqrt(3 / fi) * (torch::rand(shape) * 2 - 1);
    case Init::KaimingNormal: return std::sqrt(1 / fi) * torch::randn(shape);
  }
  TORCH_CHECK(false, "invalid init mode");
}

// ---- Linear ---------------------------------------------------------------------------------------
Linear::Linear(int64_t in, int64_t out, const LinearOptions& o) : in_features(in), out_features(out) {
  const Init& init = o.init_;
  weight = register_parameter("weight", weightInit({out, in}, init, in, out) * init.weight);
  if (o.bias_) bias = register_parameter("bias", weightInit({out}, init, in, out) * init.bias);
}

at::Tensor Linear::forward(const at::Tensor& x) {
  at::Tensor y = x.matmul(cast(weight, x).t());
  if (bias.defined()) y = y.add(cast(bias, y));
  return y;
}

// ---- Conv2d ---------------------------------------------------------------------------------------
Conv2d::Conv2d(int64_t in, int64_t out, int64_t kernel, const ConvOptions& o)
    : in_channels(in), out_channels(out), up(o.up_), down(o.down_), fused(o.fused_) {
  TORCH_CHECK(!(up && down), "Conv2d cannot both upsample and downsample");
  const Init& init = o.init_;
  if (kernel) {
    const int64_t fi = in * kernel * kernel, fo = out * kernel * kernel;
    weight = register_parameter("weight", weightInit({out, in, kernel, kernel}, init, fi, fo) * init.weight);
    if (o.bias_) bias = register_parameter("bias", weightInit({out}, init, fi, fo) * init.bias);
  }
  if (up || down) {
    box_filter = o.filter_.size() == 2 && o.filter_[0] == o.filter_[1] && o.filter_[0] != 0;
    at::Tensor f = torch::tensor(o.filter_, torch::kFloat32);
    f = f.ger(f).unsqueeze(0).unsqueeze(1) / f.sum().square();
    resample_filter = register_buffer("resample_filter", f);
  }
}

at::Tensor Conv2d::forward(const at::Tensor& x_in) {
  at::Tensor x = x_in;
  at::Tensor w = weight.defined() ? cast(weight, x) : at::Tensor();
  at::Tensor b = bias.defined() ? cast(bias, x) : at::Tensor();
  at::Tensor f = resample_filter.defined() ? cast(resample_filter, x) : at::Tensor();
  const int64_t w_pad = w.defined() ? w.size(-1) / 2 : 0;
  const int64_t f_pad = f.defined() ? (f.size(-1) - 1) / 2 : 0;
  if (fused && up && w.defined()) {
    x = convT(x, f.mul(4).tile({in_channels, 1, 1, 1}), w_pad + f_pad, in_channels);
    x = conv(x, w, 1, 0);
  } else if (fused && down && w.defined()) {
    x = conv(x, w, 1, w_pad + f_pad);
    x = conv(x, f.tile({out_channels, 1, 1, 1}), 2, 0, out_channels);
  } else {
    // A box filter's resampling through the pooling kernels in float32/float64: the same bits as the
    // depthwise (transposed) convolution with its taps of 1/4 (powers of two scale exactly; the four
    // terms are summed in the same order), forward and backward, in a fraction of the time on the CPU.
    // 16-bit activations keep the convolution (whose CPU path accumulates in float32).
    const bool box = box_filter && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble);
    if (up) x = box ? at::upsample_nearest2d(x, IntList{2 * x.size(2), 2 * x.size(3)}, c10::nullopt, c10::nullopt)
                    : convT(x, f.mul(4).tile({in_channels, 1, 1, 1}), f_pad, in_channels);
    if (down) x = box ? at::avg_pool2d(x, IntList{2, 2}, IntList{2, 2})
                      : conv(x, f.tile({in_channels, 1, 1, 1}), 2, f_pad, in_channels);
    if (w.defined()) x = conv(x, w, 1, w_pad);
  }
  if (b.defined()) x = x.add(b.reshape({1, -1, 1, 1}));
  return x;
}

// ---- GroupNorm ------------------------------------------------------------------------------------
GroupNorm::GroupNorm(int64_t channels, double eps_, int64_t num_groups, int64_t min_per_group)
    : groups(std::min(num_groups, channels / min_per_group)), eps(eps_) {
  TORCH_CHECK(groups >= 1, "GroupNorm: ", channels, " channels are too few for groups of ", min_per_group);
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
}

at::Tensor GroupNorm::forward(const at::Tensor& x) { return at::group_norm(x, groups, cast(weight, x), cast(bias, x), eps); }

// ---- attention --------------------------------------------------------------------------------------
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
#if DMD_TORCH_AT_LEAST(2, 0)
  // [N, C, L] -> [N, 1, L, C], contiguous so that the fused (flash / memory-efficient) kernels accept
  // it; the default scale 1/sqrt(C) is EDM's
  auto t = [](const at::Tensor& z) { return z.transpose(1, 2).unsqueeze(1).contiguous(); };
  at::Tensor a = at::scaled_dot_product_attention(t(q), t(k), t(v));
  return a.squeeze(1).transpose(1, 2);
#else
  const double root = std::sqrt(static_cast<double>(k.size(1)));
  at::Tensor w = at::bmm(q.to(at::kFloat).transpose(1, 2), (k / root).to(at::kFloat)).softmax(2).to(q.scalar_type());
  return at::bmm(v, w.transpose(1, 2));
#endif
}

// ---- UNetBlock ------------------------------------------------------------------------------------
UNetBlock::UNetBlock(int64_t in, int64_t out, const BlockOptions& o)
    : in_channels(in), out_channels(out), dropout(o.dropout), skip_scale(o.skip_scale), adaptive_scale(o.adaptive_scale) {
  num_heads = !o.attn ? 0 : o.num_heads >= 0 ? o.num_heads : out / o.channels_per_head;
  const ConvOptions conv = ConvOptions().filter(o.resample_filter);
  norm0 = register_module("norm0", std::make_shared<GroupNorm>(in, o.eps));
  conv0 = register_module("conv0", std::make_shared<Conv2d>(in, out, 3, ConvOptions(conv).up(o.up).down(o.down).init(o.init)));
  affine = register_module("affine", std::make_shared<Linear>(o.emb_channels, out * (adaptive_scale ? 2 : 1), LinearOptions().init(o.init)));
  norm1 = register_module("norm1", std::make_shared<GroupNorm>(out, o.eps));
  conv1 = register_module("conv1", std::make_shared<Conv2d>(out, out, 3, ConvOptions(conv).init(o.init_zero)));
  if (out != in || o.up || o.down) {
    int64_t kernel = (o.resample_proj || out != in) ? 1 : 0;
    skip = register_module("skip", std::make_shared<Conv2d>(in, out, kernel, ConvOptions(conv).up(o.up).down(o.down).init(o.init)));
  }
  if (num_heads) {
    norm2 = register_module("norm2", std::make_shared<GroupNorm>(out, o.eps));
    qkv = register_module("qkv", std::make_shared<Conv2d>(out, out * 3, 1, ConvOptions(conv).init(o.init_attn ? *o.init_attn : o.init)));
    proj = register_module("proj", std::make_shared<Conv2d>(out, out, 1, ConvOptions(conv).init(o.init_zero)));
  }
}

at::Tensor UNetBlock::forward(const at::Tensor& x_in, const at::Tensor& emb) {
  const at::Tensor& orig = x_in;
  at::Tensor x = conv0->forward(at::silu(norm0->forward(x_in)));
  at::Tensor params = affine->forward(emb).unsqueeze(2).unsqueeze(3).to(x.scalar_type());
  if (adaptive_scale) {
    auto sc = params.chunk(2, 1);
    x = at::silu(at::addcmul(sc[1], norm1->forward(x), sc[0] + 1));
  } else {
    x = at::silu(norm1->forward(x.add(params)));
  }
  x = conv1->forward(at::dropout(x, dropout, is_training()));
  x = x.add(skip ? skip->forward(orig) : orig);
  x = x * skip_scale;
  if (num_heads) {
    const int64_t n = x.size(0), c = x.size(1);
    auto qkv_ = qkv->forward(norm2->forward(x)).reshape({n * num_heads, c / num_heads, 3, -1}).unbind(2);
    at::Tensor a = attention(qkv_[0], qkv_[1], qkv_[2]);
    x = proj->forward(a.reshape(x.sizes())).add(x);
    x = x * skip_scale;
  }
  return x;
}

// ---- embeddings ---------------------------------------------------------------------------------------
at::Tensor positionalEmbedding(const at::Tensor& x, int64_t channels, int64_t max_positions, bool endpoint) {
  at::Tensor freqs = torch::arange(0, channels / 2, torch::TensorOptions().dtype(torch::kFloat32).device(x.device()));
  freqs = freqs / static_cast<double>(channels / 2 - (endpoint ? 1 : 0));
  freqs = at::pow(1.0 / static_cast<double>(max_positions), freqs);
  at::Tensor y = x.ger(freqs.to(x.scalar_type()));
  return at::cat({y.cos(), y.sin()}, 1);
}

at::Tensor fourierEmbedding(const at::Tensor& x, const at::Tensor& freqs) {
  at::Tensor y = x.ger((freqs * (2 * M_PI)).to(x.scalar_type()));
  return at::cat({y.cos(), y.sin()}, 1);
}

}  // namespace dmd::edm
