// Stable Diffusion v1's KL autoencoder (ldm/modules/diffusionmodules/model.py Encoder and Decoder, the
// AutoencoderKL around them): ResnetBlocks, the middle attention block, downsampling by a 3x3 stride-2
// convolution after padding right and bottom, nearest upsampling then a 3x3 convolution, GroupNorm
// eps 1e-6 and swish; quant_conv / post_quant_conv. Parameters are named as ldm's state_dict
// (encoder.down.0.block.0.norm1.weight, decoder.up.3.upsample.conv.weight, quant_conv.weight, ...).
// The N-API surface: sdVaeCreate(config), sdVaeEncode(m, image) -> moments (mean and logvar),
// sdVaeDecode(m, latent) -> image.
#include <cmath>

#include "sd_layers.h"

namespace dmd::sd {

namespace {

struct Config {
  int64_t ch = 128, out_ch = 3, in_channels = 3, z_channels = 4, embed_dim = 4, num_res_blocks = 2, resolution = 256;
  std::vector<int64_t> ch_mult{1, 2, 4, 4}, attn_resolutions{};
  bool double_z = true;
};

at::Tensor swish(const at::Tensor& x) { return x * at::sigmoid(x); }

struct ResnetBlock : torch::nn::Module {
  ResnetBlock(int64_t in, int64_t out) {
    norm1 = register_module("norm1", std::make_shared<GroupNorm>(in, 1e-6));
    conv1 = register_module("conv1", std::make_shared<Conv2d>(in, out, 3, 1, 1));
    norm2 = register_module("norm2", std::make_shared<GroupNorm>(out, 1e-6));
    conv2 = register_module("conv2", std::make_shared<Conv2d>(out, out, 3, 1, 1));
    if (in != out) nin_shortcut = register_module("nin_shortcut", std::make_shared<Conv2d>(in, out, 1));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = conv1->forward(swish(norm1->forward(x)));
    h = conv2->forward(swish(norm2->forward(h)));
    return (nin_shortcut ? nin_shortcut->forward(x) : x) + h;
  }
  std::shared_ptr<GroupNorm> norm1, norm2;
  std::shared_ptr<Conv2d> conv1, conv2, nin_shortcut;
};

// single-head attention over the pixels with 1x1-convolution q, k, v and proj_out
struct AttnBlock : torch::nn::Module {
  explicit AttnBlock(int64_t c) {
    norm = register_module("norm", std::make_shared<GroupNorm>(c, 1e-6));
    q = register_module("q", std::make_shared<Conv2d>(c, c, 1));
    k = register_module("k", std::make_shared<Conv2d>(c, c, 1));
    v = register_module("v", std::make_shared<Conv2d>(c, c, 1));
    proj_out = register_module("proj_out", std::make_shared<Conv2d>(c, c, 1));
  }
  at::Tensor forward(const at::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    at::Tensor n = norm->forward(x);
    auto flat = [&](const at::Tensor& t) { return t.reshape({b, c, h * w}).transpose(1, 2); };  // b (h w) c
    at::Tensor a = attention(flat(q->forward(n)), flat(k->forward(n)), flat(v->forward(n)), 1);
    return x + proj_out->forward(a.transpose(1, 2).reshape({b, c, h, w}));
  }
  std::shared_ptr<GroupNorm> norm;
  std::shared_ptr<Conv2d> q, k, v, proj_out;
};

// a level of the encoder (blocks, attentions, downsample) or of the decoder (blocks, attentions, upsample)
struct Level : torch::nn::Module {
  std::vector<std::shared_ptr<ResnetBlock>> blocks;
  std::vector<std::shared_ptr<AttnBlock>> attns;
  std::shared_ptr<Conv2d> resample;
  bool up = false;
  at::Tensor forward(const at::Tensor& x_in) {
    at::Tensor x = x_in;
    for (size_t i = 0; i < blocks.size(); ++i) {
      x = blocks[i]->forward(x);
      if (i < attns.size()) x = attns[i]->forward(x);
    }
    if (!resample) return x;
    if (up) {
      namespace F = torch::nn::functional;
      return resample->forward(F::interpolate(x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest)));
    }
    return resample->forward(at::constant_pad_nd(x, {0, 1, 0, 1}, 0));
  }
};

struct Mid : torch::nn::Module {
  explicit Mid(int64_t c) {
    block_1 = register_module("block_1", std::make_shared<ResnetBlock>(c, c));
    attn_1 = register_module("attn_1", std::make_shared<AttnBlock>(c));
    block_2 = register_module("block_2", std::make_shared<ResnetBlock>(c, c));
  }
  at::Tensor forward(const at::Tensor& x) { return block_2->forward(attn_1->forward(block_1->forward(x))); }
  std::shared_ptr<ResnetBlock> block_1, block_2;
  std::shared_ptr<AttnBlock> attn_1;
};

std::shared_ptr<Level> makeLevel(int64_t& block_in, int64_t block_out, int64_t count, bool attn, const char* resample, bool up) {
  auto l = std::make_shared<Level>();
  auto blocks = l->register_module("block", std::make_shared<torch::nn::Module>());
  auto attns = l->register_module("attn", std::make_shared<torch::nn::Module>());
  for (int64_t i = 0; i < count; ++i) {
    l->blocks.push_back(blocks->register_module(std::to_string(i), std::make_shared<ResnetBlock>(block_in, block_out)));
    block_in = block_out;
    if (attn) l->attns.push_back(attns->register_module(std::to_string(i), std::make_shared<AttnBlock>(block_in)));
  }
  if (resample) {
    auto r = l->register_module(resample, std::make_shared<torch::nn::Module>());
    l->resample = r->register_module("conv", std::make_shared<Conv2d>(block_in, block_in, 3, up ? 1 : 2, up ? 1 : 0));
    l->up = up;
  }
  return l;
}

bool contains(const std::vector<int64_t>& v, int64_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

struct Encoder : torch::nn::Module {
  explicit Encoder(const Config& c) {
    conv_in = register_module("conv_in", std::make_shared<Conv2d>(c.in_channels, c.ch, 3, 1, 1));
    auto down = register_module("down", std::make_shared<torch::nn::Module>());
    int64_t block_in = c.ch, res = c.resolution;
    for (size_t i = 0; i < c.ch_mult.size(); ++i) {
      const bool last = i + 1 == c.ch_mult.size();
      levels.push_back(down->register_module(std::to_string(i), makeLevel(block_in, c.ch * c.ch_mult[i], c.num_res_blocks, contains(c.attn_resolutions, res), last ? nullptr : "downsample", false)));
      if (!last) res /= 2;
    }
    mid = register_module("mid", std::make_shared<Mid>(block_in));
    norm_out = register_module("norm_out", std::make_shared<GroupNorm>(block_in, 1e-6));
    conv_out = register_module("conv_out", std::make_shared<Conv2d>(block_in, c.double_z ? 2 * c.z_channels : c.z_channels, 3, 1, 1));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = conv_in->forward(x);
    for (auto& l : levels) h = l->forward(h);
    return conv_out->forward(swish(norm_out->forward(mid->forward(h))));
  }
  std::shared_ptr<Conv2d> conv_in, conv_out;
  std::vector<std::shared_ptr<Level>> levels;
  std::shared_ptr<Mid> mid;
  std::shared_ptr<GroupNorm> norm_out;
};

struct Decoder : torch::nn::Module {
  explicit Decoder(const Config& c) {
    const size_t n = c.ch_mult.size();
    int64_t block_in = c.ch * c.ch_mult[n - 1], res = c.resolution >> (n - 1);
    conv_in = register_module("conv_in", std::make_shared<Conv2d>(c.z_channels, block_in, 3, 1, 1));
    mid = register_module("mid", std::make_shared<Mid>(block_in));
    // ldm builds the levels from the lowest resolution up and inserts each at the front: up.0 is the
    // highest resolution, and the decoder runs up.(n-1) first
    std::vector<std::shared_ptr<Level>> built(n);
    for (size_t i = n; i-- > 0;) {
      built[i] = makeLevel(block_in, c.ch * c.ch_mult[i], c.num_res_blocks + 1, contains(c.attn_resolutions, res), i == 0 ? nullptr : "upsample", true);
      if (i) res *= 2;
    }
    auto up = register_module("up", std::make_shared<torch::nn::Module>());
    for (size_t i = 0; i < n; ++i) up->register_module(std::to_string(i), built[i]);
    for (size_t i = n; i-- > 0;) levels.push_back(built[i]);
    norm_out = register_module("norm_out", std::make_shared<GroupNorm>(block_in, 1e-6));
    conv_out = register_module("conv_out", std::make_shared<Conv2d>(block_in, c.out_ch, 3, 1, 1));
  }
  at::Tensor forward(const at::Tensor& z) {
    at::Tensor h = mid->forward(conv_in->forward(z));
    for (auto& l : levels) h = l->forward(h);
    return conv_out->forward(swish(norm_out->forward(h)));
  }
  std::shared_ptr<Conv2d> conv_in, conv_out;
  std::vector<std::shared_ptr<Level>> levels;
  std::shared_ptr<Mid> mid;
  std::shared_ptr<GroupNorm> norm_out;
};

struct AutoencoderKL : torch::nn::Module {
  explicit AutoencoderKL(const Config& c_) : c(c_) {
    encoder = register_module("encoder", std::make_shared<Encoder>(c));
    decoder = register_module("decoder", std::make_shared<Decoder>(c));
    quant_conv = register_module("quant_conv", std::make_shared<Conv2d>(2 * c.z_channels, 2 * c.embed_dim, 1));
    post_quant_conv = register_module("post_quant_conv", std::make_shared<Conv2d>(c.embed_dim, c.z_channels, 1));
  }
  Config c;
  std::shared_ptr<Encoder> encoder;
  std::shared_ptr<Decoder> decoder;
  std::shared_ptr<Conv2d> quant_conv, post_quant_conv;
};

std::vector<int64_t> listField(const Napi::Object& o, const char* k) {
  Napi::Value v = o.Get(k);
  if (!v.IsArray()) throwType(std::string("SD VAE config: '") + k + "' must be a list of positive integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    double d = a.Get(i).IsNumber() ? a.Get(i).As<Napi::Number>().DoubleValue() : -1;
    if (d < 1 || std::floor(d) != d || d > 1e6) throwRange(std::string("SD VAE config: '") + k + "' must hold positive integers");
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

// sdVaeCreate({ch, out_ch, in_channels, z_channels, embed_dim, num_res_blocks, resolution, ch_mult, attn_resolutions, double_z})
Napi::Value Create(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) throwType("sdVaeCreate: config must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  Config c;
  const char* what = "SD VAE config";
  c.ch = positiveField(o, "ch", what);
  c.out_ch = positiveField(o, "out_ch", what);
  c.in_channels = positiveField(o, "in_channels", what);
  c.z_channels = positiveField(o, "z_channels", what);
  c.embed_dim = positiveField(o, "embed_dim", what);
  c.num_res_blocks = positiveField(o, "num_res_blocks", what);
  c.resolution = positiveField(o, "resolution", what);
  c.ch_mult = listField(o, "ch_mult");
  c.attn_resolutions = listField(o, "attn_resolutions");
  c.double_z = o.Get("double_z").ToBoolean().Value();
  if (c.ch_mult.empty()) throwRange("SD VAE config: ch_mult must not be empty");
  if (!c.double_z) throwRange("SD VAE config: double_z must be true (a KL autoencoder's encoder gives mean and log-variance)");
  for (int64_t m : c.ch_mult)
    if ((m * c.ch) % 32) throwRange("SD VAE config: every level's channels (ch x ch_mult) must be a multiple of 32 (GroupNorm's groups)");
  SkipInit skip(o.Get("init").IsBoolean() && !o.Get("init").As<Napi::Boolean>().Value());
  return ModuleHandle::Wrap(info.Env(), std::make_shared<AutoencoderKL>(c), "AutoencoderKL");
}

int64_t factor(const Config& c) { return int64_t{1} << (c.ch_mult.size() - 1); }

// sdVaeEncode(m, image [B, in_channels, H, W] in [-1, 1], {dtype}) -> moments float32 [B, 2 embed_dim, H/f, W/f]
Napi::Value Encode(const Napi::CallbackInfo& info) {
  AutoencoderKL& m = moduleArg<AutoencoderKL>(info, 0, "an SD VAE");
  at::Tensor& x = tensorArg(info, 1);
  at::ScalarType dtype = executionDtype(info[2], 2, "sdVaeEncode");
  const int64_t f = factor(m.c);
  if (x.dim() != 4 || x.size(1) != m.c.in_channels) throwRange("sdVaeEncode: images must be [B, " + std::to_string(m.c.in_channels) + ", H, W], got " + c10::str(x.sizes()));
  if (x.size(2) % f || x.size(3) % f) throwRange("sdVaeEncode: the image size " + std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) + " must be divisible by " + std::to_string(f));
  at::Tensor h = m.encoder->forward(x.to(dtype));
  return wrap(info.Env(), m.quant_conv->forward(h.to(at::kFloat)));
}

// sdVaeDecode(m, latent [B, embed_dim, h, w], {dtype}) -> images float32 [B, out_ch, h f, w f]
Napi::Value Decode(const Napi::CallbackInfo& info) {
  AutoencoderKL& m = moduleArg<AutoencoderKL>(info, 0, "an SD VAE");
  at::Tensor& z = tensorArg(info, 1);
  at::ScalarType dtype = executionDtype(info[2], 2, "sdVaeDecode");
  if (z.dim() != 4 || z.size(1) != m.c.embed_dim) throwRange("sdVaeDecode: latents must be [B, " + std::to_string(m.c.embed_dim) + ", h, w], got " + c10::str(z.sizes()));
  at::Tensor h = m.post_quant_conv->forward(z.to(at::kFloat)).to(dtype);
  return wrap(info.Env(), m.decoder->forward(h).to(at::kFloat));
}

// sdVaeInfo(m) -> {downsample, latentChannels}
Napi::Value Info(const Napi::CallbackInfo& info) {
  AutoencoderKL& m = moduleArg<AutoencoderKL>(info, 0, "an SD VAE");
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("downsample", static_cast<double>(factor(m.c)));
  o.Set("latentChannels", static_cast<double>(m.c.embed_dim));
  return o;
}

}  // namespace

}  // namespace dmd::sd

namespace dmd {
void registerSDVAE(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "sdVaeCreate", sd::Create);
  DMD_EXPORT(exports, env, "sdVaeEncode", sd::Encode);
  DMD_EXPORT(exports, env, "sdVaeDecode", sd::Decode);
  DMD_EXPORT(exports, env, "sdVaeInfo", sd::Info);
}
}  // namespace dmd
