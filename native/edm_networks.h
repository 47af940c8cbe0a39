// EDM's two UNets and their shared configuration (the EDMPrecond constructor arguments).
#pragma once
#include "edm_layers.h"

namespace dmd::edm {

struct Config {
  std::string model_type;  // "SongUNet" | "DhariwalUNet"
  int64_t img_resolution = 32, img_channels = 3, label_dim = 0, augment_dim = 0;
  int64_t model_channels = 128;
  std::vector<int64_t> channel_mult{1, 2, 2, 2};
  int64_t channel_mult_emb = 4, channel_mult_noise = 1, num_blocks = 4;
  std::vector<int64_t> attn_resolutions{16};
  double dropout = 0.1, label_dropout = 0;
  std::string embedding_type = "positional", encoder_type = "standard", decoder_type = "standard";
  std::vector<double> resample_filter{1, 1};
  double sigma_data = 0.5;
};

Config configFrom(const Napi::Object& o);

// The inner network F_theta(x, c_noise, class_labels, augment_labels).
struct UNet : torch::nn::Module {
  // bottleneck = true returns the encoder output (the input of DMD2's GAN head) instead.
  virtual at::Tensor forward(const at::Tensor& x, const at::Tensor& noise_labels, const at::Tensor& class_labels,
                             const at::Tensor& augment_labels, bool bottleneck) = 0;
  double label_dropout = 0;
};

std::shared_ptr<UNet> makeSongUNet(const Config& c);
std::shared_ptr<UNet> makeDhariwalUNet(const Config& c);

// Class labels with label dropout applied in training (classifier-free guidance training).
at::Tensor dropLabels(const at::Tensor& labels, double p, bool training);

}  // namespace dmd::edm
