// Stable Diffusion v1's latent UNet: CompVis/stable-diffusion ldm's UNetModel with
// use_spatial_transformer (openaimodel.py, attention.py) — ResBlocks with the timestep embedding,
// SpatialTransformers (GroupNorm, 1x1 proj_in, BasicTransformerBlocks of self-attention,
// cross-attention on the text context and a GEGLU feed-forward, 1x1 proj_out), down/upsampling and the
// middle block. Parameters are named as ldm's state_dict (input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight).
// It predicts eps; on request the middle block's output (DMD2's GAN classifier reads it), alone or with eps.
// The N-API surface: sdUnetCreate(config), sdUnetForward(m, x, timesteps, context, options), sdUnetInfo(m).
#include <cmath>

#include "sd_layers.h"

namespace dmd::sd {

namespace {

struct Config {
  int64_t in_channels = 4, out_channels = 4, model_channels = 320, num_res_blocks = 2, context_dim = 768;
  std::vector<int64_t> attention_resolutions{4, 2, 1}, channel_mult{1, 2, 4, 4};
  int64_t num_heads = 8, num_head_channels = -1, transformer_depth = 1;
};

// One layer of a TimestepEmbedSequential: a ResBlock (takes emb), a SpatialTransformer (takes the
// context) or a plain layer (convolution, down/upsampling).
struct Layer : torch::nn::Module {
  virtual at::Tensor run(const at::Tensor& x, const at::Tensor& emb, const at::Tensor& context) = 0;
};

struct ResBlock : Layer {
  ResBlock(int64_t in, int64_t emb, int64_t out) {
    // Sequential indices as ldm's (SiLU and Dropout hold no parameters)
    in_layers = register_module("in_layers", std::make_shared<torch::nn::Module>());
    in_norm = in_layers->register_module("0", std::make_shared<GroupNorm>(in, 1e-5));
    in_conv = in_layers->register_module("2", std::make_shared<Conv2d>(in, out, 3, 1, 1));
    emb_layers = register_module("emb_layers", std::make_shared<torch::nn::Module>());
    emb_lin = emb_layers->register_module("1", std::make_shared<Linear>(emb, out));
    out_layers = register_module("out_layers", std::make_shared<torch::nn::Module>());
    out_norm = out_layers->register_module("0", std::make_shared<GroupNorm>(out, 1e-5));
    out_conv = out_layers->register_module("3", std::make_shared<Conv2d>(out, out, 3, 1, 1, /*zero=*/true));
    if (in != out) skip = register_module("skip_connection", std::make_shared<Conv2d>(in, out, 1));
  }
  at::Tensor run(const at::Tensor& x, const at::Tensor& emb, const at::Tensor&) override {
    at::Tensor h = in_conv->forward(at::silu(in_norm->forward(x)));
    h = h + emb_lin->forward(at::silu(emb)).to(h.scalar_type()).unsqueeze(-1).unsqueeze(-1);
    h = out_conv->forward(at::silu(out_norm->forward(h)));
    return (skip ? skip->forward(x) : x) + h;
  }
  std::shared_ptr<torch::nn::Module> in_layers, emb_layers, out_layers;
  std::shared_ptr<GroupNorm> in_norm, out_norm;
  std::shared_ptr<Conv2d> in_conv, out_conv, skip;
  std::shared_ptr<Linear> emb_lin;
};

struct CrossAttention : torch::nn::Module {
  CrossAttention(int64_t query_dim, int64_t context_dim, int64_t heads_, int64_t dim_head) : heads(heads_) {
    const int64_t inner = heads * dim_head;
    to_q = register_module("to_q", std::make_shared<Linear>(query_dim, inner, false));
    to_k = register_module("to_k", std::make_shared<Linear>(context_dim, inner, false));
    to_v = register_module("to_v", std::make_shared<Linear>(context_dim, inner, false));
    auto out = register_module("to_out", std::make_shared<torch::nn::Module>());
    to_out = out->register_module("0", std::make_shared<Linear>(inner, query_dim));
  }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context) {
    return to_out->forward(attention(to_q->forward(x), to_k->forward(context), to_v->forward(context), heads));
  }
  int64_t heads;
  std::shared_ptr<Linear> to_q, to_k, to_v, to_out;
};

struct BasicTransformerBlock : torch::nn::Module {
  BasicTransformerBlock(int64_t dim, int64_t heads, int64_t dim_head, int64_t context_dim) {
    attn1 = register_module("attn1", std::make_shared<CrossAttention>(dim, dim, heads, dim_head));
    // GEGLU feed-forward: net.0.proj to 2 x 4 x dim (value, gate), net.2 back to dim
    auto ff = register_module("ff", std::make_shared<torch::nn::Module>());
    auto net = ff->register_module("net", std::make_shared<torch::nn::Module>());
    auto geglu = net->register_module("0", std::make_shared<torch::nn::Module>());
    ff_proj = geglu->register_module("proj", std::make_shared<Linear>(dim, dim * 4 * 2));
    ff_out = net->register_module("2", std::make_shared<Linear>(dim * 4, dim));
    attn2 = register_module("attn2", std::make_shared<CrossAttention>(dim, context_dim, heads, dim_head));
    norm1 = register_module("norm1", std::make_shared<LayerNorm>(dim, 1e-5));
    norm2 = register_module("norm2", std::make_shared<LayerNorm>(dim, 1e-5));
    norm3 = register_module("norm3", std::make_shared<LayerNorm>(dim, 1e-5));
  }
  at::Tensor forward(const at::Tensor& x_in, const at::Tensor& context) {
    at::Tensor h = norm1->forward(x_in);
    at::Tensor x = attn1->forward(h, h) + x_in;
    x = attn2->forward(norm2->forward(x), context) + x;
    auto vg = ff_proj->forward(norm3->forward(x)).chunk(2, -1);
    return ff_out->forward(vg[0] * at::gelu(vg[1])) + x;
  }
  std::shared_ptr<CrossAttention> attn1, attn2;
  std::shared_ptr<Linear> ff_proj, ff_out;
  std::shared_ptr<LayerNorm> norm1, norm2, norm3;
};

struct SpatialTransformer : Layer {
  SpatialTransformer(int64_t channels, int64_t heads, int64_t dim_head, int64_t depth, int64_t context_dim) {
    const int64_t inner = heads * dim_head;
    norm = register_module("norm", std::make_shared<GroupNorm>(channels, 1e-6));
    proj_in = register_module("proj_in", std::make_shared<Conv2d>(channels, inner, 1));
    auto blocks = register_module("transformer_blocks", std::make_shared<torch::nn::Module>());
    for (int64_t i = 0; i < depth; ++i) this->blocks.push_back(blocks->register_module(std::to_string(i), std::make_shared<BasicTransformerBlock>(inner, heads, dim_head, context_dim)));
    proj_out = register_module("proj_out", std::make_shared<Conv2d>(inner, channels, 1, 1, 0, /*zero=*/true));
  }
  at::Tensor run(const at::Tensor& x_in, const at::Tensor&, const at::Tensor& context) override {
    const int64_t b = x_in.size(0), h = x_in.size(2), w = x_in.size(3);
    at::Tensor x = proj_in->forward(norm->forward(x_in));
    const int64_t c = x.size(1);
    x = x.reshape({b, c, h * w}).transpose(1, 2);  // b (h w) c
    at::Tensor ctx = context.to(x.scalar_type());
    for (auto& blk : blocks) x = blk->forward(x, ctx);
    x = x.transpose(1, 2).reshape({b, c, h, w});
    return proj_out->forward(x) + x_in;
  }
  std::shared_ptr<GroupNorm> norm;
  std::shared_ptr<Conv2d> proj_in, proj_out;
  std::vector<std::shared_ptr<BasicTransformerBlock>> blocks;
};

// The first layer: a 3x3 convolution whose parameters sit at the block's own level (input_blocks.0.0.weight).
struct ConvIn : Layer {
  ConvIn(int64_t in, int64_t out) {
    const int64_t fan_in = in * 9;
    weight = register_parameter("weight", uniformInit({out, in, 3, 3}, fan_in));
    bias = register_parameter("bias", uniformInit({out}, fan_in));
  }
  at::Tensor run(const at::Tensor& x, const at::Tensor&, const at::Tensor&) override {
    return at::conv2d(x, weight.to(x.scalar_type()), bias.to(x.scalar_type()), {1, 1}, {1, 1});
  }
  at::Tensor weight, bias;
};

// Downsample (op: 3x3, stride 2, padding 1) or Upsample (nearest x2, then conv: 3x3, padding 1).
struct Resample : Layer {
  Resample(int64_t ch, bool up_) : up(up_) {
    conv = register_module(up ? "conv" : "op", std::make_shared<Conv2d>(ch, ch, 3, up ? 1 : 2, 1));
  }
  at::Tensor run(const at::Tensor& x, const at::Tensor&, const at::Tensor&) override {
    if (!up) return conv->forward(x);
    namespace F = torch::nn::functional;
    return conv->forward(F::interpolate(x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest)));
  }
  bool up;
  std::shared_ptr<Conv2d> conv;
};

// TimestepEmbedSequential: its layers registered as "0", "1", ...
struct Block : torch::nn::Module {
  template <typename T>
  std::shared_ptr<T> add(std::shared_ptr<T> layer) {
    layers.push_back(register_module(std::to_string(layers.size()), layer));
    return layer;
  }
  at::Tensor run(const at::Tensor& x_in, const at::Tensor& emb, const at::Tensor& context) {
    at::Tensor x = x_in;
    for (auto& l : layers) x = l->run(x, emb, context);
    return x;
  }
  std::vector<std::shared_ptr<Layer>> layers;
};

struct SDUNet : torch::nn::Module {
  explicit SDUNet(const Config& c_) : c(c_) {
    const int64_t mc = c.model_channels, ted = mc * 4;
    auto te = register_module("time_embed", std::make_shared<torch::nn::Module>());
    time0 = te->register_module("0", std::make_shared<Linear>(mc, ted));
    time2 = te->register_module("2", std::make_shared<Linear>(ted, ted));
    auto inputs = register_module("input_blocks", std::make_shared<torch::nn::Module>());
    auto outputs = register_module("output_blocks", std::make_shared<torch::nn::Module>());
    auto addInput = [&](std::shared_ptr<Block> b) { input_blocks.push_back(inputs->register_module(std::to_string(input_blocks.size()), b)); };
    auto addOutput = [&](std::shared_ptr<Block> b) { output_blocks.push_back(outputs->register_module(std::to_string(output_blocks.size()), b)); };
    auto transformer = [&](int64_t ch) {
      const int64_t heads = c.num_head_channels == -1 ? c.num_heads : ch / c.num_head_channels;
      const int64_t dim_head = c.num_head_channels == -1 ? ch / c.num_heads : c.num_head_channels;
      return std::make_shared<SpatialTransformer>(ch, heads, dim_head, c.transformer_depth, c.context_dim);
    };
    auto attends = [&](int64_t ds) { return std::find(c.attention_resolutions.begin(), c.attention_resolutions.end(), ds) != c.attention_resolutions.end(); };
    {
      auto b = std::make_shared<Block>();
      b->add(std::make_shared<ConvIn>(c.in_channels, mc));
      addInput(b);
    }
    std::vector<int64_t> chans{mc};
    int64_t ch = mc, ds = 1;
    for (size_t level = 0; level < c.channel_mult.size(); ++level) {
      for (int64_t i = 0; i < c.num_res_blocks; ++i) {
        auto b = std::make_shared<Block>();
        b->add(std::make_shared<ResBlock>(ch, ted, c.channel_mult[level] * mc));
        ch = c.channel_mult[level] * mc;
        if (attends(ds)) b->add(transformer(ch));
        addInput(b);
        chans.push_back(ch);
      }
      if (level + 1 != c.channel_mult.size()) {
        auto b = std::make_shared<Block>();
        b->add(std::make_shared<Resample>(ch, false));
        addInput(b);
        chans.push_back(ch);
        ds *= 2;
      }
    }
    middle_block = register_module("middle_block", std::make_shared<Block>());
    middle_block->add(std::make_shared<ResBlock>(ch, ted, ch));
    middle_block->add(transformer(ch));
    middle_block->add(std::make_shared<ResBlock>(ch, ted, ch));
    mid_channels = ch;
    for (size_t l = c.channel_mult.size(); l-- > 0;) {
      for (int64_t i = 0; i <= c.num_res_blocks; ++i) {
        const int64_t ich = chans.back();
        chans.pop_back();
        auto b = std::make_shared<Block>();
        b->add(std::make_shared<ResBlock>(ch + ich, ted, mc * c.channel_mult[l]));
        ch = mc * c.channel_mult[l];
        if (attends(ds)) b->add(transformer(ch));
        if (l && i == c.num_res_blocks) {
          b->add(std::make_shared<Resample>(ch, true));
          ds /= 2;
        }
        addOutput(b);
      }
    }
    auto out = register_module("out", std::make_shared<torch::nn::Module>());
    out_norm = out->register_module("0", std::make_shared<GroupNorm>(ch, 1e-5));
    out_conv = out->register_module("2", std::make_shared<Conv2d>(mc, c.out_channels, 3, 1, 1, /*zero=*/true));
  }

  // ldm's timestep_embedding: [cos(t f), sin(t f)], f_i = exp(-ln(10000) i / half), in float32
  at::Tensor timestepEmbedding(const at::Tensor& t) const {
    const int64_t half = c.model_channels / 2;
    at::Tensor freqs = at::exp(torch::arange(0, half, torch::TensorOptions().dtype(at::kFloat).device(t.device())) * (-std::log(10000.0) / static_cast<double>(half)));
    at::Tensor args = t.to(at::kFloat).unsqueeze(1) * freqs.unsqueeze(0);
    at::Tensor e = at::cat({args.cos(), args.sin()}, -1);
    if (c.model_channels % 2) e = at::cat({e, at::zeros_like(e.narrow(1, 0, 1))}, -1);
    return e;
  }

  at::Tensor runBlock(Block& b, const at::Tensor& h, const at::Tensor& emb, const at::Tensor& context) {
    // whenever gradients are recorded, in training or eval mode (DMD trains its UNets with dropout off)
    if (!checkpoint || !at::GradMode::is_enabled()) return b.run(h, emb, context);
    BlockFn fn = [&b](const std::vector<at::Tensor>& in) { return b.run(in[0], in[1], in[2]); };
    return checkpointed(fn, {h, emb, context});
  }

  // mode 0: eps; 1: middle-block output only (the decoder is not run); 2: both
  std::vector<at::Tensor> forward(const at::Tensor& x, const at::Tensor& timesteps, const at::Tensor& context, at::ScalarType dtype, int mode) {
    at::Tensor emb = time2->forward(at::silu(time0->forward(timestepEmbedding(timesteps)))).to(dtype);
    at::Tensor ctx = context.to(dtype);
    at::Tensor h = x.to(dtype);
    std::vector<at::Tensor> hs;
    for (auto& b : input_blocks) {
      h = runBlock(*b, h, emb, ctx);
      hs.push_back(h);
    }
    h = runBlock(*middle_block, h, emb, ctx);
    at::Tensor mid = h.to(at::kFloat);
    if (mode == 1) return {mid};
    for (auto& b : output_blocks) {
      h = runBlock(*b, at::cat({h, hs.back()}, 1), emb, ctx);
      hs.pop_back();
    }
    // ldm: h.type(x.dtype), then out in float32
    at::Tensor eps = out_conv->forward(at::silu(out_norm->forward(h.to(at::kFloat))));
    if (mode == 2) return {eps, mid};
    return {eps};
  }

  Config c;
  bool checkpoint = false;
  int64_t mid_channels = 0;
  std::shared_ptr<Linear> time0, time2;
  std::vector<std::shared_ptr<Block>> input_blocks, output_blocks;
  std::shared_ptr<Block> middle_block;
  std::shared_ptr<GroupNorm> out_norm;
  std::shared_ptr<Conv2d> out_conv;
};

int64_t field(const Napi::Object& o, const char* k) { return positiveField(o, k, "SD UNet config"); }

std::vector<int64_t> listField(const Napi::Object& o, const char* k, bool allowEmpty) {
  Napi::Value v = o.Get(k);
  if (!v.IsArray()) throwType(std::string("SD UNet config: '") + k + "' must be a list of positive integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1;
    if (d < 1 || std::floor(d) != d || d > 1e6) throwRange(std::string("SD UNet config: '") + k + "' must hold positive integers");
    out.push_back(static_cast<int64_t>(d));
  }
  if (out.empty() && !allowEmpty) throwRange(std::string("SD UNet config: '") + k + "' must not be empty");
  return out;
}

SDUNet& unetArg(const Napi::CallbackInfo& info, size_t i) { return moduleArg<SDUNet>(info, i, "an SD UNet"); }

// sdUnetCreate({in_channels, out_channels, model_channels, num_res_blocks, attention_resolutions,
// channel_mult, num_heads, num_head_channels, transformer_depth, context_dim})
Napi::Value Create(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) throwType("sdUnetCreate: config must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  Config c;
  c.in_channels = field(o, "in_channels");
  c.out_channels = field(o, "out_channels");
  c.model_channels = field(o, "model_channels");
  c.num_res_blocks = field(o, "num_res_blocks");
  c.context_dim = field(o, "context_dim");
  c.transformer_depth = field(o, "transformer_depth");
  c.channel_mult = listField(o, "channel_mult", false);
  c.attention_resolutions = listField(o, "attention_resolutions", true);
  Napi::Value heads = o.Get("num_heads"), headCh = o.Get("num_head_channels");
  c.num_heads = heads.IsNumber() ? heads.As<Napi::Number>().Int64Value() : -1;
  c.num_head_channels = headCh.IsNumber() ? headCh.As<Napi::Number>().Int64Value() : -1;
  if ((c.num_heads < 1) == (c.num_head_channels < 1)) throwRange("SD UNet config: give exactly one of num_heads and num_head_channels (the other -1)");
  for (int64_t m : c.channel_mult) {
    const int64_t ch = m * c.model_channels;
    if (ch % 32) throwRange("SD UNet config: every level's channels (model_channels x channel_mult) must be a multiple of 32 (GroupNorm's groups)");
    if (c.num_head_channels > 0 ? ch % c.num_head_channels : ch % c.num_heads)
      throwRange("SD UNet config: " + std::to_string(ch) + " channels do not split into the attention heads");
  }
  SkipInit skip(o.Get("init").IsBoolean() && !o.Get("init").As<Napi::Boolean>().Value());
  auto m = std::make_shared<SDUNet>(c);
  Napi::Value ck = o.Get("use_checkpoint");
  m->checkpoint = ck.IsBoolean() && ck.As<Napi::Boolean>().Value();
  return ModuleHandle::Wrap(info.Env(), m, "SDUNet");
}

// sdUnetForward(m, x [B,C,H,W], timesteps int [B], context [B,L,D], {dtype, output: 'eps'|'mid'|'both', checkpoint})
Napi::Value Forward(const Napi::CallbackInfo& info) {
  SDUNet& m = unetArg(info, 0);
  at::Tensor& x = tensorArg(info, 1);
  at::Tensor& t = tensorArg(info, 2);
  at::Tensor& context = tensorArg(info, 3);
  at::ScalarType dtype = executionDtype(info[4], 4, "sdUnetForward");
  int mode = 0;
  if (info[4].IsObject()) {
    Napi::Object o = info[4].As<Napi::Object>();
    Napi::Value out = o.Get("output");
    if (out.IsString()) {
      std::string s = out.As<Napi::String>().Utf8Value();
      mode = s == "eps" ? 0 : s == "mid" ? 1 : s == "both" ? 2 : -1;
      if (mode < 0) throwType("sdUnetForward: output must be 'eps', 'mid' or 'both'");
    }
  }
  if (x.dim() != 4 || x.size(1) != m.c.in_channels) throwRange("sdUnetForward: x must be [B, " + std::to_string(m.c.in_channels) + ", H, W], got " + c10::str(x.sizes()));
  const int64_t levels = static_cast<int64_t>(m.c.channel_mult.size()) - 1;
  if (x.size(2) % (1 << levels) || x.size(3) % (1 << levels))
    throwRange("sdUnetForward: the latent size " + std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) + " must be divisible by " + std::to_string(1 << levels));
  if (t.dim() != 1 || (t.size(0) != x.size(0) && t.size(0) != 1)) throwRange("sdUnetForward: timesteps must be [B] or [1]");
  if (context.dim() != 3 || context.size(0) != x.size(0) || context.size(2) != m.c.context_dim)
    throwRange("sdUnetForward: context must be [B, L, " + std::to_string(m.c.context_dim) + "], got " + c10::str(context.sizes()));
  at::Tensor ts = t.size(0) == x.size(0) ? t : t.expand({x.size(0)});
  auto outs = m.forward(x, ts, context, dtype, mode);
  if (mode == 2) return wrapList(info.Env(), outs);
  return wrap(info.Env(), outs[0]);
}

// sdUnetInfo(m) -> {midChannels, downsample}: the middle block's channels and the latent's downsampling to it
Napi::Value Info(const Napi::CallbackInfo& info) {
  SDUNet& m = unetArg(info, 0);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("midChannels", static_cast<double>(m.mid_channels));
  o.Set("downsample", static_cast<double>(1 << (m.c.channel_mult.size() - 1)));
  return o;
}

// sdUnetSetCheckpoint(m, on): activation checkpointing of every block whenever gradients are recorded
Napi::Value SetCheckpoint(const Napi::CallbackInfo& info) {
  unetArg(info, 0).checkpoint = info[1].ToBoolean().Value();
  return info.Env().Undefined();
}

}  // namespace

}  // namespace dmd::sd

namespace dmd {
void registerSDUNet(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "sdUnetCreate", sd::Create);
  DMD_EXPORT(exports, env, "sdUnetForward", sd::Forward);
  DMD_EXPORT(exports, env, "sdUnetInfo", sd::Info);
  DMD_EXPORT(exports, env, "sdUnetSetCheckpoint", sd::SetCheckpoint);
}
}  // namespace dmd
