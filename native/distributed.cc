// c10d for data-parallel training: TCPStore / PrefixStore and the process groups of libtorch
// (ProcessGroupGloo on CPU tensors when the Gloo headers were found at build time, DMD_WITH_GLOO;
// ProcessGroupNCCL in CUDA builds that have NCCL's header, DMD_WITH_NCCL), with
// the collectives DMD training needs: broadcast, allreduce (sum), allgather, barrier. Each collective
// is waited for with the group's timeout; a failure is a JS error naming the rank, the collective and
// libtorch's cause. The concrete backend class is held directly (libtorch 2.x splits ProcessGroup and
// Backend; 1.13 does not), so the same code serves both.
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef DMD_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef DMD_WITH_NCCL
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <netdb.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "common.h"

namespace dmd {

namespace {

using ms = std::chrono::milliseconds;

struct StoreBox {
  static constexpr uint64_t kMagic = 0x73746f7265626f78ULL;  // "storebox"
  uint64_t magic = kMagic;
  c10::intrusive_ptr<c10d::Store> store;
  std::string where;
};

// One process group: the backend object, the calls that run on it, and what errors name.
struct GroupBox {
  static constexpr uint64_t kMagic = 0x67726f7570626f78ULL;  // "groupbox"
  uint64_t magic = kMagic;
  std::string backend;
  int rank = 0, size = 1;
  ms timeout{0};
  std::function<c10::intrusive_ptr<c10d::Work>(std::vector<at::Tensor>&, int)> broadcast;
  std::function<c10::intrusive_ptr<c10d::Work>(std::vector<at::Tensor>&)> allreduce;
  std::function<c10::intrusive_ptr<c10d::Work>(std::vector<std::vector<at::Tensor>>&, std::vector<at::Tensor>&)> allgather;
  std::function<c10::intrusive_ptr<c10d::Work>()> barrier;
};

template <typename T>
T* boxFrom(const Napi::Value& v) {
  if (!v.IsExternal()) return nullptr;
  auto* p = v.As<Napi::External<T>>().Data();
  return p && p->magic == T::kMagic ? p : nullptr;
}

StoreBox& storeArg(const Napi::CallbackInfo& info, size_t i) {
  StoreBox* s = boxFrom<StoreBox>(info[i]);
  if (!s || !s->store) throwType("argument " + std::to_string(i) + " must be a store");
  return *s;
}

GroupBox& groupArg(const Napi::CallbackInfo& info, size_t i) {
  GroupBox* g = boxFrom<GroupBox>(info[i]);
  if (!g || !g->allreduce) throwType("argument " + std::to_string(i) + " must be an open process group");
  return *g;
}

Napi::Value wrapStore(Napi::Env env, c10::intrusive_ptr<c10d::Store> store, std::string where) {
  auto* box = new StoreBox();
  box->store = std::move(store);
  box->where = std::move(where);
  return Napi::External<StoreBox>::New(env, box, [](Napi::Env, StoreBox* b) { delete b; });
}

std::string causeOf(const std::exception& e) {
  std::string m = e.what();
  // libtorch appends a C++ backtrace after the first lines; keep the message
  auto cut = m.find("\nException raised from");
  if (cut != std::string::npos) m = m.substr(0, cut);
  return m;
}

// Runs a collective and waits for it with the group's timeout; errors name rank and collective.
void run(GroupBox& g, const char* what, const std::function<c10::intrusive_ptr<c10d::Work>()>& start) {
  try {
    auto work = start();
    if (!work->wait(g.timeout)) throw std::runtime_error("timed out");
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(g.rank) + " of " + std::to_string(g.size) + ": " + what + " over " + g.backend +
                             " failed (" + causeOf(e) + "); another rank probably stopped or hangs (timeout " +
                             std::to_string(g.timeout.count() / 1000) + " s, --dist-timeout)");
  }
}

// storeCreate({host, port, isServer, worldSize, timeoutMs, waitWorkers})
Napi::Value StoreCreate(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) throwType("storeCreate: options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  const std::string host = o.Get("host").IsString() ? o.Get("host").As<Napi::String>().Utf8Value() : "127.0.0.1";
  const double port = o.Get("port").IsNumber() ? o.Get("port").As<Napi::Number>().DoubleValue() : -1;
  if (!(port >= 0 && port <= 65535)) throwRange("storeCreate: port must be in 0..65535");
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(port);
  opts.isServer = o.Get("isServer").ToBoolean().Value();
  if (o.Get("worldSize").IsNumber()) opts.numWorkers = static_cast<std::size_t>(o.Get("worldSize").As<Napi::Number>().Int64Value());
  opts.waitWorkers = o.Get("waitWorkers").IsBoolean() ? o.Get("waitWorkers").As<Napi::Boolean>().Value() : false;
  opts.timeout = ms(o.Get("timeoutMs").IsNumber() ? o.Get("timeoutMs").As<Napi::Number>().Int64Value() : 300000);
  const std::string where = host + ":" + std::to_string(opts.port);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  // libtorch >= 2.4 serves the store with libuv by default; USE_LIBUV=0 picks the classic server, as
  // in PyTorch, and a libtorch built without libuv (Debian's) gets the classic one below
  if (const char* v = std::getenv("USE_LIBUV")) opts.useLibUV = std::string(v) != "0";
#endif
  try {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    if (opts.useLibUV) {
      try {
        return wrapStore(info.Env(), c10::make_intrusive<c10d::TCPStore>(host, opts), where);
      } catch (const std::exception& e) {
        if (std::string(e.what()).find("libuv") == std::string::npos) throw;
        opts.useLibUV = false;  // refused before any socket was opened
      }
    }
#endif
    return wrapStore(info.Env(), c10::make_intrusive<c10d::TCPStore>(host, opts), where);
  } catch (const std::exception& e) {
    const std::string cause = causeOf(e);
    const double secs = static_cast<double>(opts.timeout.count()) / 1000.0;
    if (opts.isServer)
      throw std::runtime_error("could not host the rendezvous store at " + where + " (" + cause + ")" +
                               (cause.find("in use") != std::string::npos || cause.find("Address already") != std::string::npos
                                    ? ": the port is held by another program; choose another MASTER_PORT (--nproc-per-node picks a free one)"
                                    : "; check MASTER_ADDR and MASTER_PORT"));
    throw std::runtime_error("no rendezvous store answered at " + where + " within " + std::to_string(static_cast<int>(secs)) + " s (" + cause +
                             "): rank 0, which hosts it, has not started, or another program holds that port; start rank 0, check MASTER_ADDR/MASTER_PORT, or raise --dist-timeout");
  }
}

// resolveHost(name) -> the first address the name resolves to (IPv4 or IPv6 text); throws naming the name
Napi::Value ResolveHost(const Napi::CallbackInfo& info) {
  const std::string host = stringArg(info, 0);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || !res) throwRange(std::string("'") + host + "' does not resolve (" + ::gai_strerror(rc) + ")");
  char buf[NI_MAXHOST] = {0};
  const int nrc = ::getnameinfo(res->ai_addr, res->ai_addrlen, buf, sizeof(buf), nullptr, 0, NI_NUMERICHOST);
  ::freeaddrinfo(res);
  if (nrc != 0) throwRange(std::string("'") + host + "' resolves to an address that cannot be printed (" + ::gai_strerror(nrc) + ")");
  return Napi::String::New(info.Env(), buf);
}

// storePrefix(store, prefix)
Napi::Value StorePrefix(const Napi::CallbackInfo& info) {
  StoreBox& s = storeArg(info, 0);
  const std::string prefix = stringArg(info, 1);
  return wrapStore(info.Env(), c10::make_intrusive<c10d::PrefixStore>(prefix, s.store), s.where + "/" + prefix);
}

std::vector<uint8_t> bytesArg(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsString()) {
    std::string s = info[i].As<Napi::String>().Utf8Value();
    return {s.begin(), s.end()};
  }
  if (info[i].IsTypedArray()) {
    auto a = info[i].As<Napi::Uint8Array>();
    return {a.Data(), a.Data() + a.ByteLength()};
  }
  throwType("store value must be a string or a Buffer");
}

Napi::Value StoreSet(const Napi::CallbackInfo& info) {
  StoreBox& s = storeArg(info, 0);
  s.store->set(stringArg(info, 1), bytesArg(info, 2));
  return info.Env().Undefined();
}

Napi::Value StoreGet(const Napi::CallbackInfo& info) {
  StoreBox& s = storeArg(info, 0);
  std::vector<uint8_t> v = s.store->get(stringArg(info, 1));
  return Napi::Buffer<uint8_t>::Copy(info.Env(), v.data(), v.size());
}

Napi::Value StoreAdd(const Napi::CallbackInfo& info) {
  StoreBox& s = storeArg(info, 0);
  return Napi::Number::New(info.Env(), static_cast<double>(s.store->add(stringArg(info, 1), intArg(info, 2))));
}

std::vector<std::string> keysArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsArray()) throwType("store keys must be an array of strings");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<std::string> keys;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    if (!a.Get(k).IsString()) throwType("store keys must be strings");
    keys.push_back(a.Get(k).As<Napi::String>().Utf8Value());
  }
  return keys;
}

// storeWait(store, keys, timeoutMs)
Napi::Value StoreWait(const Napi::CallbackInfo& info) {
  storeArg(info, 0).store->wait(keysArg(info, 1), ms(intArgOr(info, 2, 300000)));
  return info.Env().Undefined();
}

Napi::Value StoreCheck(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), storeArg(info, 0).store->check(keysArg(info, 1)));
}

// the calls capture the backend, which lives as long as they do
template <typename PG>
void bind(GroupBox& g, const c10::intrusive_ptr<PG>& pg) {
  g.broadcast = [pg](std::vector<at::Tensor>& t, int root) {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    return pg->broadcast(t, o);
  };
  g.allreduce = [pg](std::vector<at::Tensor>& t) { return pg->allreduce(t, c10d::AllreduceOptions()); };
  g.allgather = [pg](std::vector<std::vector<at::Tensor>>& out, std::vector<at::Tensor>& in) { return pg->allgather(out, in, c10d::AllgatherOptions()); };
  g.barrier = [pg]() { return pg->barrier(c10d::BarrierOptions()); };
}

// groupCreate(store, rank, size, {backend, timeoutMs, device})
Napi::Value GroupCreate(const Napi::CallbackInfo& info) {
  StoreBox& s = storeArg(info, 0);
  const int64_t rank = intArg(info, 1), size = intArg(info, 2);
  if (size < 1 || rank < 0 || rank >= size) throwRange("groupCreate: need 0 <= rank < size, got rank " + std::to_string(rank) + ", size " + std::to_string(size));
  Napi::Object o = info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(info.Env());
  const std::string backend = o.Get("backend").IsString() ? o.Get("backend").As<Napi::String>().Utf8Value() : "gloo";
  const ms timeout(o.Get("timeoutMs").IsNumber() ? o.Get("timeoutMs").As<Napi::Number>().Int64Value() : 120000);
  auto* box = new GroupBox();
  box->backend = backend;
  box->rank = static_cast<int>(rank);
  box->size = static_cast<int>(size);
  box->timeout = timeout;
  try {
    if (backend == "gloo") {
#ifdef DMD_WITH_GLOO
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      // as PyTorch: the interfaces of GLOO_SOCKET_IFNAME, else the host's default device
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname && *ifname) {
        std::string names(ifname);
        size_t start = 0;
        while (start <= names.size()) {
          size_t end = names.find(',', start);
          std::string name = names.substr(start, end == std::string::npos ? std::string::npos : end - start);
          if (!name.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
          if (end == std::string::npos) break;
          start = end + 1;
        }
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      bind(*box, c10::make_intrusive<c10d::ProcessGroupGloo>(s.store, static_cast<int>(rank), static_cast<int>(size), opts));
#else
      throwType("this build of dmd-torch has no Gloo backend: install the Gloo headers (Debian: apt-get install libgloo-dev) and rebuild with npm run build:native");
#endif
    } else if (backend == "nccl") {
#ifdef DMD_WITH_NCCL
      const int64_t device = o.Get("device").IsNumber() ? o.Get("device").As<Napi::Number>().Int64Value() : 0;
      // the device of LOCAL_RANK must be current before the first collective
      c10::impl::getDeviceGuardImpl(c10::kCUDA)->setDevice(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device)));
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      bind(*box, c10::make_intrusive<c10d::ProcessGroupNCCL>(s.store, static_cast<int>(rank), static_cast<int>(size), opts));
#else
      throwType("this build of dmd-torch has no NCCL backend: it needs a CUDA libtorch and NCCL's header (nccl.h; set NCCL_HOME), then npm run build:native");
#endif
    } else {
      throwType("unknown process-group backend '" + backend + "' (gloo or nccl)");
    }
  } catch (...) {
    delete box;
    throw;
  }
  return Napi::External<GroupBox>::New(info.Env(), box, [](Napi::Env, GroupBox* b) { delete b; });
}

// groupBroadcast(group, tensors, root)
Napi::Value GroupBroadcast(const Napi::CallbackInfo& info) {
  GroupBox& g = groupArg(info, 0);
  std::vector<at::Tensor> t = tensorListArg(info, 1);
  const int root = static_cast<int>(intArg(info, 2));
  run(g, "broadcast", [&] { return g.broadcast(t, root); });
  return info.Env().Undefined();
}

// groupAllreduce(group, tensors): in-place sum
Napi::Value GroupAllreduce(const Napi::CallbackInfo& info) {
  GroupBox& g = groupArg(info, 0);
  std::vector<at::Tensor> t = tensorListArg(info, 1);
  run(g, "allreduce", [&] { return g.allreduce(t); });
  return info.Env().Undefined();
}

// groupAllgather(group, tensor) -> [tensor of rank 0, ..., tensor of rank size-1]
Napi::Value GroupAllgather(const Napi::CallbackInfo& info) {
  GroupBox& g = groupArg(info, 0);
  std::vector<at::Tensor> in{tensorArg(info, 1).contiguous()};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < g.size; ++r) out[0].push_back(at::empty_like(in[0]));
  run(g, "allgather", [&] { return g.allgather(out, in); });
  return wrapList(info.Env(), out[0]);
}

Napi::Value GroupBarrier(const Napi::CallbackInfo& info) {
  GroupBox& g = groupArg(info, 0);
  run(g, "barrier", [&] { return g.barrier(); });
  return info.Env().Undefined();
}

// Splits tensors into buckets of one dtype and device of at most bucketBytes (a tensor larger than
// that is a bucket of its own), keeping their order.
std::vector<std::vector<size_t>> buckets(const std::vector<at::Tensor>& ts, int64_t bucketBytes) {
  std::vector<std::vector<size_t>> out;
  int64_t bytes = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    const int64_t b = ts[i].numel() * static_cast<int64_t>(ts[i].element_size());
    const bool fits = !out.empty() && bytes + b <= bucketBytes && ts[out.back().front()].scalar_type() == ts[i].scalar_type() &&
                      ts[out.back().front()].device() == ts[i].device();
    if (!fits) {
      out.emplace_back();
      bytes = 0;
    }
    out.back().push_back(i);
    bytes += b;
  }
  return out;
}

// Runs `collective` on each bucket flattened into one contiguous tensor, then copies the result back.
void bucketed(GroupBox& g, std::vector<at::Tensor>& ts, int64_t bucketBytes, const char* what,
              const std::function<c10::intrusive_ptr<c10d::Work>(std::vector<at::Tensor>&)>& collective, double scale) {
  at::NoGradGuard ng;
  for (const auto& b : buckets(ts, bucketBytes)) {
    std::vector<at::Tensor> parts;
    for (size_t i : b) parts.push_back(ts[i].reshape({-1}));
    std::vector<at::Tensor> flat{at::cat(parts)};
    run(g, what, [&] { return collective(flat); });
    if (scale != 1) flat[0].mul_(scale);
    int64_t at = 0;
    for (size_t i : b) {
      const int64_t n = ts[i].numel();
      ts[i].copy_(flat[0].narrow(0, at, n).view(ts[i].sizes()));
      at += n;
    }
  }
}

// groupBroadcastTensors(group, tensors, root, bucketBytes): every tensor becomes root's, in place
// (parameters and buffers of networks: a few calls per network, not one per tensor)
Napi::Value GroupBroadcastTensors(const Napi::CallbackInfo& info) {
  GroupBox& g = groupArg(info, 0);
  std::vector<at::Tensor> ts = tensorListArg(info, 1);
  const int root = static_cast<int>(intArg(info, 2));
  bucketed(g, ts, intArgOr(info, 3, 25 << 20), "broadcast", [&](std::vector<at::Tensor>& t) { return g.broadcast(t, root); }, 1);
  return info.Env().Undefined();
}

// groupAverageGradients(group, params, bucketBytes): each parameter's gradient becomes the mean over the
// group. A parameter with a gradient on some rank gets a zero one where it has none; one without a
// gradient on every rank stays without. Returns the number of gradients averaged.
Napi::Value GroupAverageGradients(const Napi::CallbackInfo& info) {
  GroupBox& g = groupArg(info, 0);
  std::vector<at::Tensor> params = tensorListArg(info, 1);
  if (params.empty()) return Napi::Number::New(info.Env(), 0);
  at::NoGradGuard ng;
  std::vector<at::Tensor> mask{at::empty({static_cast<int64_t>(params.size())}, at::TensorOptions().dtype(at::kInt).device(params[0].device()))};
  {
    std::vector<int32_t> has(params.size());
    for (size_t i = 0; i < params.size(); ++i) has[i] = params[i].grad().defined() ? 1 : 0;
    mask[0].copy_(at::tensor(has, at::kInt));
  }
  run(g, "allreduce (gradient mask)", [&] { return g.allreduce(mask); });
  const at::Tensor anyHas = mask[0].to(at::kCPU);
  const int32_t* m = anyHas.data_ptr<int32_t>();
  std::vector<at::Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!m[i]) continue;
    if (!params[i].grad().defined()) params[i].mutable_grad() = at::zeros_like(params[i]);
    grads.push_back(params[i].grad());
  }
  bucketed(g, grads, intArgOr(info, 2, 25 << 20), "allreduce (gradients)", [&](std::vector<at::Tensor>& t) { return g.allreduce(t); }, 1.0 / g.size);
  return Napi::Number::New(info.Env(), static_cast<double>(grads.size()));
}

// groupDestroy(group): releases the backend (its threads and sockets)
Napi::Value GroupDestroy(const Napi::CallbackInfo& info) {
  GroupBox* g = boxFrom<GroupBox>(info[0]);
  if (!g) throwType("argument 0 must be a process group");
  g->broadcast = nullptr;
  g->allreduce = nullptr;
  g->allgather = nullptr;
  g->barrier = nullptr;
  return info.Env().Undefined();
}

}  // namespace

// the process-group backends this build has (for buildInfo)
std::vector<std::string> distributedBackends() {
  std::vector<std::string> b;
#ifdef DMD_WITH_GLOO
  b.push_back("gloo");
#endif
#ifdef DMD_WITH_NCCL
  b.push_back("nccl");
#endif
  return b;
}

void registerDistributed(Napi::Env env, Exports exports) {
  DMD_EXPORT(exports, env, "storeCreate", StoreCreate);
  DMD_EXPORT(exports, env, "resolveHost", ResolveHost);
  DMD_EXPORT(exports, env, "storePrefix", StorePrefix);
  DMD_EXPORT(exports, env, "storeSet", StoreSet);
  DMD_EXPORT(exports, env, "storeGet", StoreGet);
  DMD_EXPORT(exports, env, "storeAdd", StoreAdd);
  DMD_EXPORT(exports, env, "storeWait", StoreWait);
  DMD_EXPORT(exports, env, "storeCheck", StoreCheck);
  DMD_EXPORT(exports, env, "groupCreate", GroupCreate);
  DMD_EXPORT(exports, env, "groupBroadcast", GroupBroadcast);
  DMD_EXPORT(exports, env, "groupAllreduce", GroupAllreduce);
  DMD_EXPORT(exports, env, "groupAllgather", GroupAllgather);
  DMD_EXPORT(exports, env, "groupBarrier", GroupBarrier);
  DMD_EXPORT(exports, env, "groupBroadcastTensors", GroupBroadcastTensors);
  DMD_EXPORT(exports, env, "groupAverageGradients", GroupAverageGradients);
  DMD_EXPORT(exports, env, "groupDestroy", GroupDestroy);
}

}  // namespace dmd
