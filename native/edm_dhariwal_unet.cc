// DhariwalUNet: EDM's reimplementation of ADM (Dhariwal & Nichol 2021).
#include "edm_networks.h"

namespace dmd::edm {

namespace {

struct Container : torch::nn::Module {};

struct DhariwalUNet : UNet {
  explicit DhariwalUNet(const Config& c);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& noise_labels, const at::Tensor& class_labels,
                     const at::Tensor& augment_labels, bool bottleneck) override;

  int64_t model_channels;
  std::shared_ptr<Linear> map_augment, map_layer0, map_layer1, map_label;
  std::shared_ptr<Container> enc, dec;
  std::shared_ptr<Conv2d> enc_conv;  // the first encoder entry
  std::vector<std::shared_ptr<UNetBlock>> enc_blocks, dec_blocks;
  std::shared_ptr<GroupNorm> out_norm;
  std::shared_ptr<Conv2d> out_conv;
};

DhariwalUNet::DhariwalUNet(const Config& c) : model_channels(c.model_channels) {
  label_dropout = c.label_dropout;
  const int64_t emb_channels = c.model_channels * c.channel_mult_emb;
  BlockOptions bo;
  bo.emb_channels = emb_channels;
  bo.channels_per_head = 64;
  bo.dropout = c.dropout;
  const Init init{Init::KaimingUniform, std::sqrt(1.0 / 3), std::sqrt(1.0 / 3)};
  const Init init_zero{Init::KaimingUniform, 0, 0};
  bo.init = init;
  bo.init_zero = init_zero;
  const std::vector<double> rf{1, 1};

  // Mapping (registration order follows EDM: map_augment, map_layer0, map_layer1, map_label).
  if (c.augment_dim) map_augment = register_module("map_augment", std::make_shared<Linear>(c.augment_dim, c.model_channels, LinearOptions().bias(false).init(init_zero)));
  map_layer0 = register_module("map_layer0", std::make_shared<Linear>(c.model_channels, emb_channels, LinearOptions().init(init)));
  map_layer1 = register_module("map_layer1", std::make_shared<Linear>(emb_channels, emb_channels, LinearOptions().init(init)));
  if (c.label_dim) map_label = register_module("map_label", std::make_shared<Linear>(c.label_dim, emb_channels,
                                                                                  LinearOptions().bias(false).init(Init{Init::KaimingNormal, std::sqrt(static_cast<double>(c.label_dim)), 0})));

  // Encoder.
  enc = register_module("enc", std::make_shared<Container>());
  int64_t cout = c.img_channels;
  std::vector<int64_t> skips;
  for (size_t level = 0; level < c.channel_mult.size(); ++level) {
    const int64_t mult = c.channel_mult[level];
    const int64_t res = c.img_resolution >> level;
    const std::string r = std::to_string(res) + "x" + std::to_string(res);
    const bool attn = std::find(c.attn_resolutions.begin(), c.attn_resolutions.end(), res) != c.attn_resolutions.end();
    if (level == 0) {
      int64_t cin = cout;
      cout = c.model_channels * mult;
      enc_conv = enc->register_module(r + "_conv", std::make_shared<Conv2d>(cin, cout, 3, ConvOptions().filter(rf).init(init)));
    } else {
      enc_blocks.push_back(enc->register_module(r + "_down", std::make_shared<UNetBlock>(cout, cout, bo.downsampling())));
    }
    skips.push_back(cout);
    for (int64_t idx = 0; idx < c.num_blocks; ++idx) {
      int64_t cin = cout;
      cout = c.model_channels * mult;
      enc_blocks.push_back(enc->register_module(r + "_block" + std::to_string(idx), std::make_shared<UNetBlock>(cin, cout, bo.attention(attn))));
      skips.push_back(cout);
    }
  }

  // The encoder output (DMD2's GAN head input).
  bottleneck_channels = cout;
  bottleneck_resolution = c.img_resolution >> (c.channel_mult.size() - 1);

  // Decoder.
  dec = register_module("dec", std::make_shared<Container>());
  const int64_t levels = static_cast<int64_t>(c.channel_mult.size());
  for (int64_t level = levels - 1; level >= 0; --level) {
    const int64_t mult = c.channel_mult[level];
    const int64_t res = c.img_resolution >> level;
    const std::string r = std::to_string(res) + "x" + std::to_string(res);
    const bool attn = std::find(c.attn_resolutions.begin(), c.attn_resolutions.end(), res) != c.attn_resolutions.end();
    if (level == levels - 1) {
      dec_blocks.push_back(dec->register_module(r + "_in0", std::make_shared<UNetBlock>(cout, cout, bo.attention())));
      dec_blocks.push_back(dec->register_module(r + "_in1", std::make_shared<UNetBlock>(cout, cout, bo)));
    } else {
      dec_blocks.push_back(dec->register_module(r + "_up", std::make_shared<UNetBlock>(cout, cout, bo.upsampling())));
    }
    for (int64_t idx = 0; idx < c.num_blocks + 1; ++idx) {
      int64_t cin = cout + skips.back();
      skips.pop_back();
      cout = c.model_channels * mult;
      dec_blocks.push_back(dec->register_module(r + "_block" + std::to_string(idx), std::make_shared<UNetBlock>(cin, cout, bo.attention(attn))));
    }
  }
  out_norm = register_module("out_norm", std::make_shared<GroupNorm>(cout, 1e-5));
  out_conv = register_module("out_conv", std::make_shared<Conv2d>(cout, c.img_channels, 3, ConvOptions().filter(rf).init(init_zero)));
}

at::Tensor DhariwalUNet::forward(const at::Tensor& x_in, const at::Tensor& noise_labels, const at::Tensor& class_labels,
                                 const at::Tensor& augment_labels, bool bottleneck) {
  // Mapping.
  at::Tensor emb = positionalEmbedding(noise_labels, model_channels, 10000, false);
  if (map_augment && augment_labels.defined()) emb = emb + map_augment->forward(augment_labels);
  emb = at::silu(map_layer0->forward(emb));
  emb = map_layer1->forward(emb);
  if (map_label) emb = emb + map_label->forward(dropLabels(class_labels, label_dropout, is_training()));
  emb = at::silu(emb);

  // Encoder.
  std::vector<at::Tensor> skips;
  at::Tensor x = enc_conv->forward(x_in);
  skips.push_back(x);
  for (auto& b : enc_blocks) {
    x = b->forward(x, emb);
    skips.push_back(x);
  }
  if (bottleneck) return x;

  // Decoder.
  for (auto& b : dec_blocks) {
    if (x.size(1) != b->in_channels) {
      x = at::cat({x, skips.back()}, 1);
      skips.pop_back();
    }
    x = b->forward(x, emb);
  }
  return out_conv->forward(at::silu(out_norm->forward(x)));
}

}  // namespace

std::shared_ptr<UNet> makeDhariwalUNet(const Config& c) { return std::make_shared<DhariwalUNet>(c); }

}  // namespace dmd::edm
