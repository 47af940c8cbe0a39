// SongUNet: EDM's reimplementation of DDPM++ and NCSN++ (Song et al. 2021).
#include <cmath>

#include "edm_networks.h"

namespace dmd::edm {

namespace {

enum class Role { Block, Conv, AuxDown, AuxSkip, AuxResidual, AuxUp, AuxNorm, AuxConv };

struct Entry {
  std::string name;
  Role role;
  std::shared_ptr<UNetBlock> block;
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<GroupNorm> norm;
};

struct Container : torch::nn::Module {};

struct SongUNet : UNet {
  explicit SongUNet(const Config& c);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& noise_labels, const at::Tensor& class_labels,
                     const at::Tensor& augment_labels, bool bottleneck) override;

  bool fourier;
  int64_t noise_channels;
  at::Tensor freqs;  // FourierEmbedding buffer (map_noise.freqs)
  std::shared_ptr<Linear> map_label, map_augment, map_layer0, map_layer1;
  std::shared_ptr<Container> enc, dec;
  std::vector<Entry> encoder, decoder;
};

SongUNet::SongUNet(const Config& c) {
  TORCH_CHECK(c.embedding_type == "positional" || c.embedding_type == "fourier", "embedding_type must be 'positional' or 'fourier', got '",
              c.embedding_type, "'");
  TORCH_CHECK(c.encoder_type == "standard" || c.encoder_type == "skip" || c.encoder_type == "residual",
              "encoder_type must be 'standard', 'skip' or 'residual', got '", c.encoder_type, "'");
  TORCH_CHECK(c.decoder_type == "standard" || c.decoder_type == "skip", "decoder_type must be 'standard' or 'skip', got '", c.decoder_type, "'");
  label_dropout = c.label_dropout;
  const int64_t emb_channels = c.model_channels * c.channel_mult_emb;
  noise_channels = c.model_channels * c.channel_mult_noise;
  BlockOptions bo;
  bo.emb_channels = emb_channels;
  bo.num_heads = 1;
  bo.dropout = c.dropout;
  bo.skip_scale = std::sqrt(0.5);
  bo.eps = 1e-6;
  bo.resample_filter = c.resample_filter;
  bo.resample_proj = true;
  bo.adaptive_scale = false;
  const Init init{Init::XavierUniform, 1, 0};
  bo.init = init;
  bo.init_zero = Init{Init::XavierUniform, 1e-5, 0};
  bo.init_attn = Init{Init::XavierUniform, std::sqrt(0.2), 0};
  const std::vector<double>& rf = c.resample_filter;

  // Mapping.
  fourier = c.embedding_type == "fourier";
  if (fourier) {
    auto mn = register_module("map_noise", std::make_shared<Container>());
    freqs = mn->register_buffer("freqs", torch::randn({noise_channels / 2}) * 16);
  }
  if (c.label_dim) map_label = register_module("map_label", std::make_shared<Linear>(c.label_dim, noise_channels, LinearOptions().init(init)));
  if (c.augment_dim) map_augment = register_module("map_augment", std::make_shared<Linear>(c.augment_dim, noise_channels, LinearOptions().bias(false).init(init)));
  map_layer0 = register_module("map_layer0", std::make_shared<Linear>(noise_channels, emb_channels, LinearOptions().init(init)));
  map_layer1 = register_module("map_layer1", std::make_shared<Linear>(emb_channels, emb_channels, LinearOptions().init(init)));

  // Encoder.
  enc = register_module("enc", std::make_shared<Container>());
  auto addEnc = [&](const std::string& name, Role role, std::shared_ptr<UNetBlock> b, std::shared_ptr<Conv2d> cv) {
    if (b) enc->register_module(name, b);
    if (cv) enc->register_module(name, cv);
    encoder.push_back({name, role, b, cv, nullptr});
  };
  int64_t cout = c.img_channels, caux = c.img_channels;
  std::vector<int64_t> skips;
  for (size_t level = 0; level < c.channel_mult.size(); ++level) {
    const int64_t mult = c.channel_mult[level];
    const int64_t res = c.img_resolution >> level;
    const std::string r = std::to_string(res) + "x" + std::to_string(res);
    if (level == 0) {
      int64_t cin = cout;
      cout = c.model_channels;
      addEnc(r + "_conv", Role::Conv, nullptr, std::make_shared<Conv2d>(cin, cout, 3, ConvOptions().filter(rf).init(init)));
      skips.push_back(cout);
    } else {
      addEnc(r + "_down", Role::Block, std::make_shared<UNetBlock>(cout, cout, bo.downsampling()), nullptr);
      skips.push_back(cout);
      if (c.encoder_type == "skip") {
        addEnc(r + "_aux_down", Role::AuxDown, nullptr, std::make_shared<Conv2d>(caux, caux, 0, ConvOptions().down().filter(rf)));
        addEnc(r + "_aux_skip", Role::AuxSkip, nullptr, std::make_shared<Conv2d>(caux, cout, 1, ConvOptions().filter(rf).init(init)));
      }
      if (c.encoder_type == "residual") {
        addEnc(r + "_aux_residual", Role::AuxResidual, nullptr,
               std::make_shared<Conv2d>(caux, cout, 3, ConvOptions().down().filter(rf).fused().init(init)));
        caux = cout;
      }
    }
    for (int64_t idx = 0; idx < c.num_blocks; ++idx) {
      int64_t cin = cout;
      cout = c.model_channels * mult;
      bool attn = std::find(c.attn_resolutions.begin(), c.attn_resolutions.end(), res) != c.attn_resolutions.end();
      addEnc(r + "_block" + std::to_string(idx), Role::Block, std::make_shared<UNetBlock>(cin, cout, bo.attention(attn)), nullptr);
      skips.push_back(cout);
    }
  }

  // The encoder output (DMD2's GAN head input).
  bottleneck_channels = cout;
  bottleneck_resolution = c.img_resolution >> (c.channel_mult.size() - 1);

  // Decoder.
  dec = register_module("dec", std::make_shared<Container>());
  auto addDec = [&](const std::string& name, Role role, std::shared_ptr<UNetBlock> b, std::shared_ptr<Conv2d> cv, std::shared_ptr<GroupNorm> n) {
    if (b) dec->register_module(name, b);
    if (cv) dec->register_module(name, cv);
    if (n) dec->register_module(name, n);
    decoder.push_back({name, role, b, cv, n});
  };
  const int64_t levels = static_cast<int64_t>(c.channel_mult.size());
  for (int64_t level = levels - 1; level >= 0; --level) {
    const int64_t mult = c.channel_mult[level];
    const int64_t res = c.img_resolution >> level;
    const std::string r = std::to_string(res) + "x" + std::to_string(res);
    if (level == levels - 1) {
      addDec(r + "_in0", Role::Block, std::make_shared<UNetBlock>(cout, cout, bo.attention()), nullptr, nullptr);
      addDec(r + "_in1", Role::Block, std::make_shared<UNetBlock>(cout, cout, bo), nullptr, nullptr);
    } else {
      addDec(r + "_up", Role::Block, std::make_shared<UNetBlock>(cout, cout, bo.upsampling()), nullptr, nullptr);
    }
    for (int64_t idx = 0; idx < c.num_blocks + 1; ++idx) {
      int64_t cin = cout + skips.back();
      skips.pop_back();
      cout = c.model_channels * mult;
      bool attn = idx == c.num_blocks &&
                  std::find(c.attn_resolutions.begin(), c.attn_resolutions.end(), res) != c.attn_resolutions.end();
      addDec(r + "_block" + std::to_string(idx), Role::Block, std::make_shared<UNetBlock>(cin, cout, bo.attention(attn)), nullptr, nullptr);
    }
    if (c.decoder_type == "skip" || level == 0) {
      if (c.decoder_type == "skip" && level < levels - 1)
        addDec(r + "_aux_up", Role::AuxUp, nullptr,
               std::make_shared<Conv2d>(c.img_channels, c.img_channels, 0, ConvOptions().up().filter(rf)), nullptr);
      addDec(r + "_aux_norm", Role::AuxNorm, nullptr, nullptr, std::make_shared<GroupNorm>(cout, 1e-6));
      addDec(r + "_aux_conv", Role::AuxConv, nullptr,
             std::make_shared<Conv2d>(cout, c.img_channels, 3, ConvOptions().filter(rf).init(bo.init_zero)), nullptr);
    }
  }
}

at::Tensor SongUNet::forward(const at::Tensor& x_in, const at::Tensor& noise_labels, const at::Tensor& class_labels,
                             const at::Tensor& augment_labels, bool bottleneck) {
  // Mapping.
  at::Tensor emb = fourier ? fourierEmbedding(noise_labels, freqs) : positionalEmbedding(noise_labels, noise_channels, 10000, true);
  emb = emb.reshape({emb.size(0), 2, -1}).flip(1).reshape(emb.sizes());  // swap sin/cos
  if (map_label) {
    at::Tensor tmp = dropLabels(class_labels, label_dropout, is_training());
    emb = emb + map_label->forward(tmp * std::sqrt(static_cast<double>(map_label->in_features)));
  }
  if (map_augment && augment_labels.defined()) emb = emb + map_augment->forward(augment_labels);
  emb = at::silu(map_layer0->forward(emb));
  emb = at::silu(map_layer1->forward(emb));

  // Encoder.
  std::vector<at::Tensor> skips;
  at::Tensor x = x_in, aux = x_in;
  for (auto& e : encoder) {
    switch (e.role) {
      case Role::AuxDown: aux = e.conv->forward(aux); break;
      case Role::AuxSkip: x = skips.back() = x + e.conv->forward(aux); break;
      case Role::AuxResidual: x = skips.back() = aux = (x + e.conv->forward(aux)) / std::sqrt(2.0); break;
      case Role::Conv: x = e.conv->forward(x); skips.push_back(x); break;
      default: x = e.block->forward(x, emb); skips.push_back(x); break;
    }
  }
  if (bottleneck) return x;

  // Decoder.
  at::Tensor out, tmp;
  for (auto& e : decoder) {
    switch (e.role) {
      case Role::AuxUp: out = e.conv->forward(out); break;
      case Role::AuxNorm: tmp = e.norm->forward(x); break;
      case Role::AuxConv:
        tmp = e.conv->forward(at::silu(tmp));
        out = out.defined() ? tmp + out : tmp;
        break;
      default:
        if (x.size(1) != e.block->in_channels) {
          x = at::cat({x, skips.back()}, 1);
          skips.pop_back();
        }
        x = e.block->forward(x, emb);
    }
  }
  return out;
}

}  // namespace

std::shared_ptr<UNet> makeSongUNet(const Config& c) { return std::make_shared<SongUNet>(c); }

at::Tensor dropLabels(const at::Tensor& labels, double p, bool training) {
  if (!training || p <= 0) return labels;
  at::Tensor keep = (at::rand({labels.size(0), 1}, labels.options()) >= p).to(labels.scalar_type());
  return labels * keep;
}

}  // namespace dmd::edm
