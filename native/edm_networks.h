// EDM's two UNets and their shared configuration (the EDMPrecond constructor arguments).
#pragma once
#include "edm_layers.h"

namespace dmd::edm {

// Every field is required (TypeScript's edm/config.ts owns EDM's defaults and fills them in); the
// SongUNet-only ones are read for SongUNet only.
struct Config {
  std::string model_type;  // "SongUNet" | "DhariwalUNet"
  int64_t img_resolution, img_channels, label_dim, augment_dim;
  int64_t model_channels;
  std::vector<int64_t> channel_mult;
  int64_t channel_mult_emb, channel_mult_noise = 0, num_blocks;
  std::vector<int64_t> attn_resolutions;
  double dropout, label_dropout;
  std::string embedding_type, encoder_type, decoder_type;
  std::vector<double> resample_filter;
  double sigma_data;
};

Config configFrom(const Napi::Object& o);

// The inner network F_theta(x, c_noise, class_labels, augment_labels).
struct UNet : torch::nn::Module {
  // bottleneck = true returns the encoder output (the input of DMD2's GAN head) instead.
  virtual at::Tensor forward(const at::Tensor& x, const at::Tensor& noise_labels, const at::Tensor& class_labels,
                             const at::Tensor& augment_labels, bool bottleneck) = 0;
  double label_dropout = 0;
  // the encoder output's shape, [N, bottleneck_channels, bottleneck_resolution, bottleneck_resolution]
  int64_t bottleneck_channels = 0, bottleneck_resolution = 0;
};

std::shared_ptr<UNet> makeSongUNet(const Config& c);
std::shared_ptr<UNet> makeDhariwalUNet(const Config& c);

// Class labels with label dropout applied in training (classifier-free guidance training).
at::Tensor dropLabels(const at::Tensor& labels, double p, bool training);

}  // namespace dmd::edm
