// Shared declarations of the addon: argument helpers, handle classes and the registration hooks of
// each concept file. Every exported function is wrapped by the error boundary in errors.h.
#pragma once
#include <napi.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cstdint>
#include <c10/util/Optional.h>
#include <string>
#include <vector>

#include "errors.h"

#define DMD_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace dmd {

// ---- per-environment state -----------------------------------------------------------------------
struct AddonData {
  Napi::FunctionReference moduleCtor;
  Napi::FunctionReference generatorCtor;
};
AddonData& addonData(Napi::Env env);

// ---- tensor handles (tensor.cc) --------------------------------------------------------------------
class TensorHandle {
 public:
  static Napi::Value Wrap(Napi::Env env, at::Tensor t);
  static bool Is(const Napi::Value& v);
  static TensorHandle* From(const Napi::Value& v);  // nullptr when v is not a tensor handle
  static int64_t liveCount();

  at::Tensor& tensor();  // throws when disposed
  bool disposed() const { return !alive_; }
  void dispose(Napi::Env env);

 private:
  explicit TensorHandle(at::Tensor t);
  static void finalize(napi_env env, void* data, void* hint);
  static constexpr uint64_t kMagic = 0x746f7263686e646cULL;  // "torchndl"
  uint64_t magic_;
  at::Tensor t_;
  bool alive_ = false;
  int64_t reported_ = 0;
};

// ---- module handles (module.cc) --------------------------------------------------------------------
// Every native network derives from torch::nn::Module; the handle only knows that base class. The
// family files (edm_*.cc, sd_*.cc, clip_text.cc, lpips.cc, gan_head.cc, classifier.cc, torchscript.cc)
// downcast with moduleArg<T>.
class ModuleHandle : public Napi::ObjectWrap<ModuleHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<torch::nn::Module> m, const std::string& kind);
  static ModuleHandle* From(const Napi::Value& v);
  explicit ModuleHandle(const Napi::CallbackInfo& info);
  std::shared_ptr<torch::nn::Module>& module();
  const std::string& kind() const { return kind_; }
  void release() { m_.reset(); }

 private:
  std::shared_ptr<torch::nn::Module> m_;
  std::string kind_;
};

// The native module behind argument i, as the concrete class T (what names the kind in errors).
template <typename T>
T& moduleArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  ModuleHandle* h = ModuleHandle::From(info[i]);
  if (!h) throwType("argument " + std::to_string(i) + " must be " + what + " module");
  auto* p = dynamic_cast<T*>(h->module().get());
  if (!p) throwType("argument " + std::to_string(i) + " is a '" + h->kind() + "' module, not " + what);
  return *p;
}

// ---- generator handles (random.cc) -----------------------------------------------------------------
class GeneratorHandle : public Napi::ObjectWrap<GeneratorHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, at::Generator g);
  static GeneratorHandle* From(const Napi::Value& v);
  explicit GeneratorHandle(const Napi::CallbackInfo& info);
  at::Generator& generator() { return g_; }

 private:
  at::Generator g_;
};

// ---- argument helpers (args.cc) ---------------------------------------------------------------------
at::Tensor& tensorArg(const Napi::CallbackInfo& info, size_t i);
c10::optional<at::Tensor> optTensorArg(const Napi::CallbackInfo& info, size_t i);
std::vector<at::Tensor> tensorListArg(const Napi::CallbackInfo& info, size_t i);
bool isNullish(const Napi::Value& v);
double numberArg(const Napi::CallbackInfo& info, size_t i);
double numberArgOr(const Napi::CallbackInfo& info, size_t i, double dflt);
c10::optional<double> optNumberArg(const Napi::CallbackInfo& info, size_t i);
int64_t intArg(const Napi::CallbackInfo& info, size_t i);
int64_t intArgOr(const Napi::CallbackInfo& info, size_t i, int64_t dflt);
bool boolArgOr(const Napi::CallbackInfo& info, size_t i, bool dflt);
std::string stringArg(const Napi::CallbackInfo& info, size_t i);
std::vector<int64_t> intListArg(const Napi::CallbackInfo& info, size_t i);
c10::optional<std::vector<int64_t>> optIntListArg(const Napi::CallbackInfo& info, size_t i);
// a positive integer field of a config object (`what` names the object in errors)
int64_t positiveField(const Napi::Object& o, const char* key, const std::string& what);
at::Scalar scalarFrom(const Napi::Value& v, size_t i);
at::Scalar scalarArg(const Napi::CallbackInfo& info, size_t i);
at::ScalarType dtypeFrom(const Napi::Value& v, size_t i);
at::ScalarType dtypeArg(const Napi::CallbackInfo& info, size_t i);
c10::optional<at::ScalarType> optDtypeArg(const Napi::CallbackInfo& info, size_t i);
c10::Device deviceArg(const Napi::CallbackInfo& info, size_t i);
c10::optional<c10::Device> optDeviceArg(const Napi::CallbackInfo& info, size_t i);
c10::optional<at::Generator> optGeneratorArg(const Napi::CallbackInfo& info, size_t i);
// a tensor operand that may be given as a JS number: numbers become wrapped scalars (PyTorch's rule)
at::Tensor operandArg(const Napi::CallbackInfo& info, size_t i, const at::Tensor& like);

Napi::Value wrap(Napi::Env env, at::Tensor t);
Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts);
Napi::Value wrapOptional(Napi::Env env, const at::Tensor& t);  // null for an undefined tensor
Napi::Value shapeValue(Napi::Env env, at::IntArrayRef s);

// ---- registration hooks, one per concept file ---------------------------------------------------------
using Exports = Napi::Object;
void registerTensor(Napi::Env env, Exports exports);
void registerCreation(Napi::Env env, Exports exports);
void registerOps(Napi::Env env, Exports exports);
void registerNN(Napi::Env env, Exports exports);
void registerAutograd(Napi::Env env, Exports exports);
void registerForeach(Napi::Env env, Exports exports);
void registerRandom(Napi::Env env, Exports exports);
void registerModule(Napi::Env env, Exports exports);
void registerSerialize(Napi::Env env, Exports exports);
void registerCuda(Napi::Env env, Exports exports);
void registerRuntime(Napi::Env env, Exports exports);
void registerEDM(Napi::Env env, Exports exports);
void registerSDUNet(Napi::Env env, Exports exports);
void registerSDVAE(Napi::Env env, Exports exports);
void registerCLIPText(Napi::Env env, Exports exports);
void registerCLIPVision(Napi::Env env, Exports exports);
void registerLPIPS(Napi::Env env, Exports exports);
void registerGanHead(Napi::Env env, Exports exports);
void registerClassifier(Napi::Env env, Exports exports);
void registerTorchScript(Napi::Env env, Exports exports);
void registerDistributed(Napi::Env env, Exports exports);
// the process-group backends of this build (distributed.cc)
std::vector<std::string> distributedBackends();

}  // namespace dmd

// Export a guarded function under its JS name.
#define DMD_EXPORT(exports, env, name, fn) \
  (exports).Set(name, Napi::Function::New<::dmd::guarded<fn>>(env, name))
