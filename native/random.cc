// Seedable generators (CPU and CUDA) and the random tensor functions. Generator states can be read
// and restored, which is what makes a resumed training run continue bit-exactly.
#include <ATen/CPUGeneratorImpl.h>

#include "common.h"

#include <mutex>

namespace dmd {

namespace {
const napi_type_tag kGeneratorTag = {0x1f2e3d4c5b6a7988ULL, 0x0123456789abcdefULL};
thread_local at::Generator* gPendingGen = nullptr;
}  // namespace

Napi::Function GeneratorHandle::Define(Napi::Env env) { return DefineClass(env, "GeneratorHandle", {}); }

GeneratorHandle::GeneratorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GeneratorHandle>(info) {
  if (!gPendingGen) throwType("GeneratorHandle cannot be constructed directly; use createGenerator()");
  g_ = *gPendingGen;
  gPendingGen = nullptr;
}

Napi::Object GeneratorHandle::Wrap(Napi::Env env, at::Generator g) {
  gPendingGen = &g;
  Napi::Object o;
  try {
    o = addonData(env).generatorCtor.New({});
  } catch (...) {
    gPendingGen = nullptr;
    throw;
  }
  o.TypeTag(&kGeneratorTag);
  return o;
}

GeneratorHandle* GeneratorHandle::From(const Napi::Value& v) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kGeneratorTag)) return nullptr;
  return Unwrap(v.As<Napi::Object>());
}

namespace {

uint64_t seedArg(const Napi::CallbackInfo& info, size_t i) {
  int64_t s = intArg(info, i);
  if (s < 0) throwRange("seed must be a non-negative integer");
  return static_cast<uint64_t>(s);
}

GeneratorHandle& genArg(const Napi::CallbackInfo& info, size_t i) {
  GeneratorHandle* g = GeneratorHandle::From(info[i]);
  if (!g) throwType("argument " + std::to_string(i) + " must be a Generator");
  return *g;
}

// createGenerator(device, seed)
Napi::Value CreateGenerator(const Napi::CallbackInfo& info) {
  c10::Device dev = deviceArg(info, 0);
  uint64_t seed = seedArg(info, 1);
  at::Generator g;
  if (dev.is_cpu()) {
    g = at::make_generator<at::CPUGeneratorImpl>(seed);
  } else {
#ifdef DMD_WITH_CUDA
    if (!torch::cuda::is_available()) throwType("createGenerator: CUDA is not available");
    // a new generator of the device's own kind: a clone of its default generator (no CUDA headers
    // needed), then reseeded, which also resets the Philox offset
    at::Generator def = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, dev.has_index() ? dev.index() : 0));
    {
      std::lock_guard<std::mutex> lock(def.mutex());
      g = def.clone();
    }
    g.set_current_seed(seed);
#else
    throwType("createGenerator: this build of dmd-torch has no CUDA support (libtorch was CPU-only)");
#endif
  }
  return GeneratorHandle::Wrap(info.Env(), g);
}

// defaultGenerator(device): the generator libtorch uses when none is given (dropout, shuffles)
Napi::Value DefaultGenerator(const Napi::CallbackInfo& info) {
  c10::Device dev = deviceArg(info, 0);
  if (dev.is_cuda() && !torch::cuda::is_available()) throwType("defaultGenerator: CUDA is not available");
  if (dev.is_cuda() && !dev.has_index()) dev = c10::Device(c10::kCUDA, 0);
  return GeneratorHandle::Wrap(info.Env(), at::globalContext().defaultGenerator(dev));
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  torch::manual_seed(seedArg(info, 0));
  return info.Env().Undefined();
}

// generatorSeed(g, seed)
Napi::Value GeneratorSeed(const Napi::CallbackInfo& info) {
  auto& g = genArg(info, 0).generator();
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_current_seed(seedArg(info, 1));
  return info.Env().Undefined();
}

Napi::Value GeneratorDevice(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), genArg(info, 0).generator().device().str());
}

// generatorGetState(g) -> uint8 CPU tensor
Napi::Value GeneratorGetState(const Napi::CallbackInfo& info) {
  auto& g = genArg(info, 0).generator();
  std::lock_guard<std::mutex> lock(g.mutex());
  return wrap(info.Env(), g.get_state());
}

// generatorSetState(g, state)
Napi::Value GeneratorSetState(const Napi::CallbackInfo& info) {
  auto& g = genArg(info, 0).generator();
  at::Tensor s = tensorArg(info, 1);
  if (s.scalar_type() != at::kByte || !s.device().is_cpu() || s.dim() != 1)
    throwType("generator state must be a 1-D uint8 CPU tensor (as returned by getState)");
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(s.contiguous());
  return info.Env().Undefined();
}

std::vector<int64_t> shapeOf(const Napi::CallbackInfo& info, size_t i) {
  auto s = intListArg(info, i);
  double n = 1;
  for (size_t k = 0; k < s.size(); ++k) {
    if (s[k] < 0) throwRange("size[" + std::to_string(k) + "] is negative");
    n *= static_cast<double>(s[k]);
  }
  if (n > 281474976710656.0) throwRange("requested random tensor is absurdly large");
  return s;
}

at::TensorOptions opts(const Napi::CallbackInfo& info, size_t i, at::ScalarType dflt) {
  return at::TensorOptions().dtype(optDtypeArg(info, i).value_or(dflt)).device(optDeviceArg(info, i + 1).value_or(c10::Device(c10::kCPU)));
}

c10::optional<at::Generator> cgen(const Napi::CallbackInfo& info, size_t i) { return optGeneratorArg(info, i); }

// rand(shape, dtype, device, gen) / randn(...)
Napi::Value Rand(const Napi::CallbackInfo& info) { return wrap(info.Env(), at::rand(shapeOf(info, 0), cgen(info, 3), opts(info, 1, at::kFloat))); }
Napi::Value Randn(const Napi::CallbackInfo& info) { return wrap(info.Env(), at::randn(shapeOf(info, 0), cgen(info, 3), opts(info, 1, at::kFloat))); }
// randint(low, high, shape, dtype, device, gen)
Napi::Value Randint(const Napi::CallbackInfo& info) {
  int64_t lo = intArg(info, 0), hi = intArg(info, 1);
  if (hi <= lo) throwRange("randint: high (" + std::to_string(hi) + ") must be greater than low (" + std::to_string(lo) + ")");
  return wrap(info.Env(), at::randint(lo, hi, shapeOf(info, 2), cgen(info, 5), opts(info, 3, at::kLong)));
}
// randperm(n, dtype, device, gen)
Napi::Value Randperm(const Napi::CallbackInfo& info) {
  int64_t n = intArg(info, 0);
  if (n < 0) throwRange("randperm: n must be non-negative");
  return wrap(info.Env(), at::randperm(n, cgen(info, 3), opts(info, 1, at::kLong)));
}
// normal_(t, mean, std, gen) / uniform_(t, from, to, gen)
Napi::Value Normal(const Napi::CallbackInfo& info) {
  tensorArg(info, 0).normal_(numberArgOr(info, 1, 0.0), numberArgOr(info, 2, 1.0), cgen(info, 3));
  return info.Env().Undefined();
}
Napi::Value Uniform(const Napi::CallbackInfo& info) {
  tensorArg(info, 0).uniform_(numberArgOr(info, 1, 0.0), numberArgOr(info, 2, 1.0), cgen(info, 3));
  return info.Env().Undefined();
}
// bernoulli(probs, gen)
Napi::Value Bernoulli(const Napi::CallbackInfo& info) { return wrap(info.Env(), at::bernoulli(tensorArg(info, 0), cgen(info, 1))); }
// multinomial(probs, n, replacement, gen)
Napi::Value Multinomial(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::multinomial(tensorArg(info, 0), intArg(info, 1), boolArgOr(info, 2, false), cgen(info, 3)));
}

}  // namespace

void registerRandom(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "createGenerator", CreateGenerator);
  DMD_EXPORT(exports, env, "defaultGenerator", DefaultGenerator);
  DMD_EXPORT(exports, env, "manualSeed", ManualSeed);
  DMD_EXPORT(exports, env, "generatorSeed", GeneratorSeed);
  DMD_EXPORT(exports, env, "generatorDevice", GeneratorDevice);
  DMD_EXPORT(exports, env, "generatorGetState", GeneratorGetState);
  DMD_EXPORT(exports, env, "generatorSetState", GeneratorSetState);
  DMD_EXPORT(exports, env, "rand", Rand);
  DMD_EXPORT(exports, env, "randn", Randn);
  DMD_EXPORT(exports, env, "randint", Randint);
  DMD_EXPORT(exports, env, "randperm", Randperm);
  DMD_EXPORT(exports, env, "normal", Normal);
  DMD_EXPORT(exports, env, "uniform", Uniform);
  DMD_EXPORT(exports, env, "bernoulli", Bernoulli);
  DMD_EXPORT(exports, env, "multinomial", Multinomial);
}

}  // namespace dmd
