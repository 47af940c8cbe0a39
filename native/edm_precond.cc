// EDMPrecond (Karras et al. 2022, eq. 7 / Table 1): D(x, sigma) = c_skip x + c_out F((c_in x), c_noise).
// The N-API surface of the EDM family: edmCreate(config) and edmForward(...), one call per forward.
#include <cmath>

#include "edm_networks.h"

namespace dmd::edm {

namespace {

// The config comes from TypeScript's parseEDMConfig, which fills in every field; a missing one is a
// programming error of the caller, reported by name.
Napi::Value required(const Napi::Object& o, const char* k) {
  Napi::Value v = o.Get(k);
  if (isNullish(v)) throwType(std::string("EDM config: '") + k + "' is missing (create networks through EDMNetwork.create, which fills in EDM's defaults)");
  return v;
}
int64_t getInt(const Napi::Object& o, const char* k) {
  Napi::Value v = required(o, k);
  if (!v.IsNumber()) throwType(std::string("EDM config: '") + k + "' must be an integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::floor(d) != d || d < 0 || d > 1e9) throwRange(std::string("EDM config: '") + k + "' must be a non-negative integer");
  return static_cast<int64_t>(d);
}
double getDouble(const Napi::Object& o, const char* k) {
  Napi::Value v = required(o, k);
  if (!v.IsNumber()) throwType(std::string("EDM config: '") + k + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}
std::string getString(const Napi::Object& o, const char* k) {
  Napi::Value v = required(o, k);
  if (!v.IsString()) throwType(std::string("EDM config: '") + k + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}
template <typename T>
std::vector<T> getList(const Napi::Object& o, const char* k) {
  Napi::Value v = required(o, k);
  if (!v.IsArray()) throwType(std::string("EDM config: '") + k + "' must be a list");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<T> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber()) throwType(std::string("EDM config: '") + k + "' must hold numbers");
    out.push_back(static_cast<T>(e.As<Napi::Number>().DoubleValue()));
  }
  return out;
}

struct EDMPrecond : torch::nn::Module {
  explicit EDMPrecond(const Config& c) : cfg(c) {
    if (c.model_type == "SongUNet") model = register_module("model", makeSongUNet(c));
    else if (c.model_type == "DhariwalUNet") model = register_module("model", makeDhariwalUNet(c));
    else TORCH_CHECK(false, "unknown model_type '", c.model_type, "' (expected SongUNet or DhariwalUNet)");
  }
  Config cfg;
  std::shared_ptr<UNet> model;
};

at::Tensor precondForward(EDMPrecond& m, const at::Tensor& x_in, const at::Tensor& sigma_in, c10::optional<at::Tensor> labels,
                          c10::optional<at::Tensor> augment, at::ScalarType dtype, bool bottleneck) {
  const Config& c = m.cfg;
  TORCH_CHECK(x_in.dim() == 4 && x_in.size(1) == c.img_channels && x_in.size(2) == c.img_resolution && x_in.size(3) == c.img_resolution,
              "x must have shape [N, ", c.img_channels, ", ", c.img_resolution, ", ", c.img_resolution, "], got ", x_in.sizes());
  const int64_t n = x_in.size(0);
  TORCH_CHECK(sigma_in.numel() == n || sigma_in.numel() == 1, "sigma must have 1 or N=", n, " elements, got ", sigma_in.numel());
  at::Tensor x = x_in.to(at::kFloat);
  at::Tensor sigma = sigma_in.to(at::kFloat).reshape({-1, 1, 1, 1});
  at::Tensor cl;
  if (c.label_dim) {
    if (labels) {
      TORCH_CHECK(labels->numel() == n * c.label_dim, "class labels must have shape [N, ", c.label_dim, "] (one-hot), got ", labels->sizes());
      cl = labels->to(at::kFloat).reshape({-1, c.label_dim});
    } else {
      cl = at::zeros({1, c.label_dim}, x.options());
    }
  }
  at::Tensor aug;
  if (augment) {
    TORCH_CHECK(c.augment_dim > 0, "augment labels given but the network has augment_dim 0");
    TORCH_CHECK(augment->numel() == n * c.augment_dim, "augment labels must have shape [N, ", c.augment_dim, "]");
    aug = augment->to(at::kFloat).reshape({-1, c.augment_dim});
  }
  const double sd = c.sigma_data;
  at::Tensor c_skip = (sd * sd) / (sigma.square() + sd * sd);
  at::Tensor c_out = sigma * sd / (sigma.square() + sd * sd).sqrt();
  at::Tensor c_in = 1 / (sd * sd + sigma.square()).sqrt();
  at::Tensor c_noise = sigma.log() / 4;
  at::Tensor F_x = m.model->forward((c_in * x).to(dtype), c_noise.flatten(), cl, aug, bottleneck);
  if (bottleneck) return F_x.to(at::kFloat);
  TORCH_CHECK(F_x.scalar_type() == dtype, "internal: network output dtype mismatch");
  return c_skip * x + c_out * F_x.to(at::kFloat);
}

EDMPrecond& precondArg(const Napi::CallbackInfo& info, size_t i) { return moduleArg<EDMPrecond>(info, i, "an EDM network"); }

// edmCreate(config)
Napi::Value Create(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) throwType("edmCreate: config must be an object");
  Config c = configFrom(info[0].As<Napi::Object>());
  return ModuleHandle::Wrap(info.Env(), std::make_shared<EDMPrecond>(c), "EDMPrecond");
}

// edmForward(m, x, sigma, labels|null, augment|null, {dtype, returnBottleneck})
Napi::Value Forward(const Napi::CallbackInfo& info) {
  EDMPrecond& m = precondArg(info, 0);
  at::Tensor& x = tensorArg(info, 1);
  at::Tensor& sigma = tensorArg(info, 2);
  auto labels = optTensorArg(info, 3);
  auto augment = optTensorArg(info, 4);
  at::ScalarType dtype = at::kFloat;
  bool bottleneck = false;
  if (info[5].IsObject()) {
    Napi::Object f = info[5].As<Napi::Object>();
    if (!isNullish(f.Get("dtype"))) dtype = dtypeFrom(f.Get("dtype"), 5);
    bottleneck = f.Get("returnBottleneck").ToBoolean().Value();
  }
  if (dtype != at::kFloat && dtype != at::kHalf && dtype != at::kBFloat16)
    throwType("edmForward: execution dtype must be float32, float16 or bfloat16");
  return wrap(info.Env(), precondForward(m, x, sigma, labels, augment, dtype, bottleneck));
}

// edmBottleneckShape(m) -> {channels, resolution}: the encoder output's shape (DMD2's GAN head input)
Napi::Value BottleneckShape(const Napi::CallbackInfo& info) {
  EDMPrecond& m = precondArg(info, 0);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("channels", static_cast<double>(m.model->bottleneck_channels));
  o.Set("resolution", static_cast<double>(m.model->bottleneck_resolution));
  return o;
}

}  // namespace

Config configFrom(const Napi::Object& o) {
  Config c;
  c.model_type = getString(o, "model_type");
  const bool song = c.model_type == "SongUNet";
  if (!song && c.model_type != "DhariwalUNet") throwType("EDM config: unknown model_type '" + c.model_type + "' (expected SongUNet or DhariwalUNet)");
  c.img_resolution = getInt(o, "img_resolution");
  c.img_channels = getInt(o, "img_channels");
  c.label_dim = getInt(o, "label_dim");
  c.augment_dim = getInt(o, "augment_dim");
  c.model_channels = getInt(o, "model_channels");
  c.channel_mult = getList<int64_t>(o, "channel_mult");
  c.channel_mult_emb = getInt(o, "channel_mult_emb");
  c.num_blocks = getInt(o, "num_blocks");
  c.attn_resolutions = getList<int64_t>(o, "attn_resolutions");
  c.dropout = getDouble(o, "dropout");
  c.label_dropout = getDouble(o, "label_dropout");
  c.sigma_data = getDouble(o, "sigma_data");
  if (song) {
    c.channel_mult_noise = getInt(o, "channel_mult_noise");
    c.embedding_type = getString(o, "embedding_type");
    c.encoder_type = getString(o, "encoder_type");
    c.decoder_type = getString(o, "decoder_type");
    c.resample_filter = getList<double>(o, "resample_filter");
  } else {
    c.resample_filter = {1, 1};
  }
  if (c.img_resolution < 1 || c.img_channels < 1 || c.model_channels < 1 || c.channel_mult.empty())
    throwRange("EDM config: img_resolution, img_channels, model_channels must be positive and channel_mult non-empty");
  if ((c.img_resolution >> (c.channel_mult.size() - 1)) < 1)
    throwRange("EDM config: img_resolution " + std::to_string(c.img_resolution) + " is too small for " + std::to_string(c.channel_mult.size()) + " levels");
  if (c.resample_filter.empty()) throwRange("EDM config: resample_filter must not be empty");
  if (!(c.dropout >= 0 && c.dropout <= 1) || !(c.label_dropout >= 0 && c.label_dropout <= 1))
    throwRange("EDM config: dropout and label_dropout must be in [0, 1]");
  return c;
}

}  // namespace dmd::edm

namespace dmd {
void registerEDM(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "edmCreate", edm::Create);
  DMD_EXPORT(exports, env, "edmForward", edm::Forward);
  DMD_EXPORT(exports, env, "edmBottleneckShape", edm::BottleneckShape);
}
}  // namespace dmd
