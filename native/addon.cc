// Addon entry point: installs the handle classes and lets each concept file register its functions.
#include "common.h"

namespace dmd {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->moduleCtor = Napi::Persistent(ModuleHandle::Define(env));
  data->generatorCtor = Napi::Persistent(GeneratorHandle::Define(env));
  env.SetInstanceData<AddonData>(data);

  registerTensor(env, exports);
  registerCreation(env, exports);
  registerOps(env, exports);
  registerNN(env, exports);
  registerAutograd(env, exports);
  registerForeach(env, exports);
  registerRandom(env, exports);
  registerModule(env, exports);
  registerSerialize(env, exports);
  registerCuda(env, exports);
  registerRuntime(env, exports);
  registerEDM(env, exports);
  registerSDUNet(env, exports);
  registerSDVAE(env, exports);
  registerCLIPText(env, exports);
  registerCLIPVision(env, exports);
  registerLPIPS(env, exports);
  registerGanHead(env, exports);
  registerClassifier(env, exports);
  registerTorchScript(env, exports);
  registerDistributed(env, exports);
  return exports;
}

}  // namespace dmd

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return dmd::Init(env, exports); }
NODE_API_MODULE(dmd_torch, InitAddon)
