// Neural-network functionals: linear, convolutions, normalisation, resampling, padding, softmax,
// pooling, dropout, one-hot and losses.
#include "common.h"

namespace dmd {

namespace F = torch::nn::functional;

namespace {

c10::optional<at::Tensor> toOpt(c10::optional<at::Tensor> t) { return t; }

std::vector<int64_t> pairArg(const Napi::CallbackInfo& info, size_t i, int64_t dflt) {
  if (isNullish(info[i])) return {dflt, dflt};
  if (info[i].IsNumber()) {
    int64_t v = intArg(info, i);
    return {v, v};
  }
  auto v = intListArg(info, i);
  if (v.size() != 2) throwType("argument " + std::to_string(i) + " must be a number or a pair of numbers");
  return v;
}

// linear(x, w, b|null)
Napi::Value Linear(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::linear(tensorArg(info, 0), tensorArg(info, 1), toOpt(optTensorArg(info, 2))));
}

// conv2d(x, w, b|null, stride, padding, dilation, groups)
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::conv2d(tensorArg(info, 0), tensorArg(info, 1), toOpt(optTensorArg(info, 2)), pairArg(info, 3, 1),
                                     pairArg(info, 4, 0), pairArg(info, 5, 1), intArgOr(info, 6, 1)));
}

// convTranspose2d(x, w, b|null, stride, padding, outputPadding, groups, dilation)
Napi::Value ConvTranspose2d(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::conv_transpose2d(tensorArg(info, 0), tensorArg(info, 1), toOpt(optTensorArg(info, 2)), pairArg(info, 3, 1),
                                               pairArg(info, 4, 0), pairArg(info, 5, 0), intArgOr(info, 6, 1), pairArg(info, 7, 1)));
}

// groupNorm(x, groups, w|null, b|null, eps)
Napi::Value GroupNorm(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::group_norm(tensorArg(info, 0), intArg(info, 1), toOpt(optTensorArg(info, 2)), toOpt(optTensorArg(info, 3)),
                                         numberArgOr(info, 4, 1e-5)));
}

// layerNorm(x, normalizedShape, w|null, b|null, eps)
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::layer_norm(tensorArg(info, 0), intListArg(info, 1), toOpt(optTensorArg(info, 2)), toOpt(optTensorArg(info, 3)),
                                         numberArgOr(info, 4, 1e-5)));
}

// interpolate(x, size|null, scale|null, mode, alignCorners|null, antialias)
Napi::Value Interpolate(const Napi::CallbackInfo& info) {
  at::Tensor& x = tensorArg(info, 0);
  auto opts = F::InterpolateFuncOptions();
  if (!isNullish(info[1])) opts.size(intListArg(info, 1));
  if (!isNullish(info[2])) {
    double s = numberArg(info, 2);
    opts.scale_factor(std::vector<double>(x.dim() - 2, s));
  }
  std::string mode = isNullish(info[3]) ? "nearest" : stringArg(info, 3);
  if (mode == "nearest") opts.mode(torch::kNearest);
  else if (mode == "bilinear") opts.mode(torch::kBilinear);
  else if (mode == "bicubic") opts.mode(torch::kBicubic);
  else if (mode == "area") opts.mode(torch::kArea);
  else if (mode == "nearest-exact") opts.mode(torch::kNearestExact);
  else throwType("interpolate: mode must be nearest, nearest-exact, bilinear, bicubic or area, got '" + mode + "'");
  if (!isNullish(info[4])) opts.align_corners(boolArgOr(info, 4, false));
  opts.antialias(boolArgOr(info, 5, false));
  return wrap(info.Env(), F::interpolate(x, opts));
}

// pad(x, pads, mode, value)
Napi::Value Pad(const Napi::CallbackInfo& info) {
  auto opts = F::PadFuncOptions(intListArg(info, 1));
  std::string mode = isNullish(info[2]) ? "constant" : stringArg(info, 2);
  if (mode == "constant") opts.mode(torch::kConstant).value(numberArgOr(info, 3, 0.0));
  else if (mode == "reflect") opts.mode(torch::kReflect);
  else if (mode == "replicate") opts.mode(torch::kReplicate);
  else if (mode == "circular") opts.mode(torch::kCircular);
  else throwType("pad: mode must be constant, reflect, replicate or circular, got '" + mode + "'");
  return wrap(info.Env(), F::pad(tensorArg(info, 0), opts));
}

Napi::Value Softmax(const Napi::CallbackInfo& info) { return wrap(info.Env(), at::softmax(tensorArg(info, 0), intArg(info, 1))); }
Napi::Value LogSoftmax(const Napi::CallbackInfo& info) { return wrap(info.Env(), at::log_softmax(tensorArg(info, 0), intArg(info, 1))); }

// softplusEx(x, beta, threshold)
Napi::Value SoftplusEx(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::softplus(tensorArg(info, 0), numberArgOr(info, 1, 1.0), numberArgOr(info, 2, 20.0)));
}

// dropout(x, p, train)
Napi::Value Dropout(const Napi::CallbackInfo& info) {
  double p = numberArg(info, 1);
  if (!(p >= 0 && p <= 1)) throwRange("dropout: p must be in [0, 1]");
  return wrap(info.Env(), at::dropout(tensorArg(info, 0), p, boolArgOr(info, 2, true)));
}

// avgPool2d(x, kernel, stride|null, padding)
Napi::Value AvgPool2d(const Napi::CallbackInfo& info) {
  auto k = pairArg(info, 1, 2);
  auto s = isNullish(info[2]) ? k : pairArg(info, 2, 1);
  return wrap(info.Env(), at::avg_pool2d(tensorArg(info, 0), k, s, pairArg(info, 3, 0)));
}
// maxPool2d(x, kernel, stride|null, padding)
Napi::Value MaxPool2d(const Napi::CallbackInfo& info) {
  auto k = pairArg(info, 1, 2);
  auto s = isNullish(info[2]) ? k : pairArg(info, 2, 1);
  return wrap(info.Env(), at::max_pool2d(tensorArg(info, 0), k, s, pairArg(info, 3, 0)));
}
// adaptiveAvgPool2d(x, size)
Napi::Value AdaptiveAvgPool2d(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::adaptive_avg_pool2d(tensorArg(info, 0), pairArg(info, 1, 1)));
}

// oneHot(indices int64, numClasses)
Napi::Value OneHot(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  if (t.scalar_type() != at::kLong) throwType("oneHot: indices must be int64, got " + std::string(c10::toString(t.scalar_type())));
  return wrap(info.Env(), at::one_hot(t, intArgOr(info, 1, -1)));
}

// crossEntropy(logits [N,C], target int64 [N], labelSmoothing)
Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::cross_entropy_loss(tensorArg(info, 0), tensorArg(info, 1), c10::nullopt, at::Reduction::Mean, -100,
                                                 numberArgOr(info, 2, 0.0)));
}

}  // namespace

void registerNN(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "linear", Linear);
  DMD_EXPORT(exports, env, "conv2d", Conv2d);
  DMD_EXPORT(exports, env, "convTranspose2d", ConvTranspose2d);
  DMD_EXPORT(exports, env, "groupNorm", GroupNorm);
  DMD_EXPORT(exports, env, "layerNorm", LayerNorm);
  DMD_EXPORT(exports, env, "interpolate", Interpolate);
  DMD_EXPORT(exports, env, "pad", Pad);
  DMD_EXPORT(exports, env, "softmax", Softmax);
  DMD_EXPORT(exports, env, "logSoftmax", LogSoftmax);
  DMD_EXPORT(exports, env, "softplusEx", SoftplusEx);
  DMD_EXPORT(exports, env, "dropout", Dropout);
  DMD_EXPORT(exports, env, "avgPool2d", AvgPool2d);
  DMD_EXPORT(exports, env, "maxPool2d", MaxPool2d);
  DMD_EXPORT(exports, env, "adaptiveAvgPool2d", AdaptiveAvgPool2d);
  DMD_EXPORT(exports, env, "oneHot", OneHot);
  DMD_EXPORT(exports, env, "crossEntropy", CrossEntropy);
}

}  // namespace dmd
