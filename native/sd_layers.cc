#include "sd_layers.h"

#include <cmath>

namespace dmd::sd {

namespace {
at::Tensor cast(const at::Tensor& t, const at::Tensor& like) { return t.scalar_type() == like.scalar_type() ? t : t.to(like.scalar_type()); }
}  // namespace

namespace {
thread_local bool gSkipInit = false;
}

SkipInit::SkipInit(bool on) : previous(gSkipInit) { gSkipInit = on; }
SkipInit::~SkipInit() { gSkipInit = previous; }
bool skippingInit() { return gSkipInit; }

// filled in place: one allocation per weight (temporaries of a billion-parameter model's init would
// stay in the allocator's free lists and in the process's RSS)
at::Tensor uniformInit(at::IntArrayRef shape, int64_t fan_in) {
  at::NoGradGuard ng;
  at::Tensor t = at::empty(shape);
  if (gSkipInit) return t;
  const double bound = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(fan_in, 1)));
  return t.uniform_(-bound, bound);
}

at::Tensor normalInit(at::IntArrayRef shape, double std) {
  at::NoGradGuard ng;
  at::Tensor t = at::empty(shape);
  return gSkipInit ? t : t.normal_(0, std);
}

// ---- Linear ---------------------------------------------------------------------------------------
Linear::Linear(int64_t in, int64_t out, bool has_bias, bool zero) {
  weight = register_parameter("weight", zero ? torch::zeros({out, in}) : uniformInit({out, in}, in));
  if (has_bias) bias = register_parameter("bias", zero ? torch::zeros({out}) : uniformInit({out}, in));
}

at::Tensor Linear::forward(const at::Tensor& x) {
  return at::linear(x, cast(weight, x), bias.defined() ? cast(bias, x) : at::Tensor());
}

// ---- Conv2d ---------------------------------------------------------------------------------------
Conv2d::Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride_, int64_t padding_, bool zero) : stride(stride_), padding(padding_) {
  const int64_t fan_in = in * kernel * kernel;
  weight = register_parameter("weight", zero ? torch::zeros({out, in, kernel, kernel}) : uniformInit({out, in, kernel, kernel}, fan_in));
  bias = register_parameter("bias", zero ? torch::zeros({out}) : uniformInit({out}, fan_in));
}

at::Tensor Conv2d::forward(const at::Tensor& x) {
  return at::conv2d(x, cast(weight, x), cast(bias, x), {stride, stride}, {padding, padding});
}

// ---- norms ----------------------------------------------------------------------------------------
GroupNorm::GroupNorm(int64_t channels, double eps_, int64_t groups_) : groups(groups_), eps(eps_) {
  TORCH_CHECK(channels % groups == 0, "GroupNorm: ", channels, " channels do not split into ", groups, " groups");
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
}

at::Tensor GroupNorm::forward(const at::Tensor& x) {
  if (x.scalar_type() == at::kFloat) return at::group_norm(x, groups, weight, bias, eps);
  return at::group_norm(x.to(at::kFloat), groups, weight.to(at::kFloat), bias.to(at::kFloat), eps).to(x.scalar_type());
}

LayerNorm::LayerNorm(int64_t dim_, double eps_) : dim(dim_), eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
  bias = register_parameter("bias", torch::zeros({dim}));
}

at::Tensor LayerNorm::forward(const at::Tensor& x) {
  if (x.scalar_type() == at::kFloat) return at::layer_norm(x, {dim}, weight, bias, eps);
  return at::layer_norm(x.to(at::kFloat), {dim}, weight.to(at::kFloat), bias.to(at::kFloat), eps).to(x.scalar_type());
}

// ---- attention --------------------------------------------------------------------------------------
at::Tensor attention(const at::Tensor& q_, const at::Tensor& k_, const at::Tensor& v_, int64_t heads, bool causal) {
  const int64_t b = q_.size(0), lq = q_.size(1), lk = k_.size(1), c = q_.size(2);
  TORCH_CHECK(c % heads == 0, "attention: ", c, " channels do not split into ", heads, " heads");
  const int64_t d = c / heads;
  // [B, L, H*D] -> [B, H, L, D]
  auto split = [&](const at::Tensor& t, int64_t l) { return t.reshape({b, l, heads, d}).transpose(1, 2); };
  at::Tensor q = split(q_, lq), k = split(k_, lk), v = split(v_, lk);
  at::Tensor out;
#if DMD_TORCH_AT_LEAST(2, 0)
  // contiguous inputs so that the fused (flash / memory-efficient) kernels take them on CUDA
  out = at::scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous(), {}, 0.0, causal);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  at::Tensor w = at::matmul(q, k.transpose(-1, -2)).mul(scale);
  if (causal) w = w.masked_fill(at::ones({lq, lk}, w.options().dtype(at::kBool)).triu(1), -std::numeric_limits<double>::infinity());
  w = w.scalar_type() == at::kFloat ? w.softmax(-1) : w.to(at::kFloat).softmax(-1).to(q.scalar_type());
  out = at::matmul(w, v);
#endif
  return out.transpose(1, 2).reshape({b, lq, c});
}

// ---- activation checkpointing ---------------------------------------------------------------------------
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// the block's function, kept alive by the autograd graph until backward has run
struct FnHolder : torch::CustomClassHolder {
  explicit FnHolder(BlockFn f) : fn(std::move(f)) {}
  BlockFn fn;
};

struct Checkpoint : torch::autograd::Function<Checkpoint> {
  // the inputs as a TensorList: that is how autograd's argument scan sees each of them as a variable
  static variable_list forward(AutogradContext* ctx, c10::intrusive_ptr<FnHolder> holder, at::TensorList list) {
    variable_list inputs(list.begin(), list.end());
    ctx->saved_data["fn"] = c10::IValue::make_capsule(holder);
    ctx->save_for_backward(inputs);
    at::NoGradGuard ng;
    return {holder->fn(inputs)};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto holder = c10::static_intrusive_pointer_cast<FnHolder>(ctx->saved_data["fn"].toCapsule());
    const BlockFn* fn = &holder->fn;
    variable_list saved = ctx->get_saved_variables();
    variable_list inputs;
    for (const auto& s : saved) {
      if (!s.defined()) {
        inputs.push_back(s);
        continue;
      }
      at::Tensor d = s.detach();
      if (s.requires_grad()) d.requires_grad_(true);
      inputs.push_back(d);
    }
    at::Tensor out;
    {
      torch::AutoGradMode on(true);
      out = (*fn)(inputs);
    }
    if (out.requires_grad()) torch::autograd::backward({out}, {grads[0]});
    variable_list result;
    result.push_back(at::Tensor());  // fn
    for (const auto& i : inputs) result.push_back(i.defined() && i.requires_grad() ? i.grad() : at::Tensor());
    return result;
  }
};

}  // namespace

at::Tensor checkpointed(const BlockFn& fn, const std::vector<at::Tensor>& inputs) {
  if (!at::GradMode::is_enabled()) return fn(inputs);
  return Checkpoint::apply(c10::make_intrusive<FnHolder>(fn), at::TensorList(inputs))[0];
}

at::ScalarType executionDtype(const Napi::Value& options, size_t argIndex, const char* what) {
  at::ScalarType dtype = at::kFloat;
  if (options.IsObject()) {
    Napi::Value d = options.As<Napi::Object>().Get("dtype");
    if (!isNullish(d)) dtype = dtypeFrom(d, argIndex);
  }
  if (dtype != at::kFloat && dtype != at::kHalf && dtype != at::kBFloat16) throwType(std::string(what) + ": execution dtype must be float32, float16 or bfloat16");
  return dtype;
}

}  // namespace dmd::sd
