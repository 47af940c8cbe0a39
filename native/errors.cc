#include <c10/util/Exception.h>

#include <new>
#include <sstream>

#include "common.h"

namespace dmd {

void throwType(const std::string& msg) { throw ArgError(ArgKind::Type, msg); }
void throwRange(const std::string& msg) { throw ArgError(ArgKind::Range, msg); }

namespace {

// libtorch messages end with "Exception raised from ... (most recent call first):" and a C++
// backtrace in some builds; users need only the message itself.
std::string cleanTorchMessage(const std::string& raw) {
  std::istringstream in(raw);
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.rfind("Exception raised from", 0) == 0) break;
    if (line.find("(most recent call first)") != std::string::npos) break;
    if (line.rfind("frame #", 0) == 0) break;
    if (!out.empty()) out += '\n';
    out += line;
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out.empty() ? raw : out;
}

[[noreturn]] void throwJs(Napi::Env env, Napi::Error err, const char* code) {
  err.Set("code", Napi::String::New(env, code));
  throw err;
}

bool mentionsOutOfMemory(const std::string& m) {
  return m.find("out of memory") != std::string::npos || m.find("can't allocate memory") != std::string::npos ||
         m.find("Cannot allocate memory") != std::string::npos;
}

}  // namespace

void rethrowAsJs(Napi::Env env) {
  try {
    throw;
  } catch (const Napi::Error&) {
    throw;
  } catch (const ArgError& e) {
    if (e.kind == ArgKind::Type) throwJs(env, Napi::TypeError::New(env, e.what()), "ERR_INVALID_ARG_TYPE");
    throwJs(env, Napi::RangeError::New(env, e.what()), "ERR_OUT_OF_RANGE");
  } catch (const c10::Error& e) {
    std::string msg = cleanTorchMessage(e.what_without_backtrace());
    const char* code = mentionsOutOfMemory(msg)                  ? "ERR_TORCH_OUT_OF_MEMORY"
                       : dynamic_cast<const c10::IndexError*>(&e) ? "ERR_TORCH_INDEX"
                       : dynamic_cast<const c10::ValueError*>(&e) ? "ERR_TORCH_VALUE"
                       : dynamic_cast<const c10::TypeError*>(&e)  ? "ERR_TORCH_TYPE"
                       : dynamic_cast<const c10::NotImplementedError*>(&e) ? "ERR_TORCH_NOT_IMPLEMENTED"
                                                                           : "ERR_TORCH";
    throwJs(env, Napi::Error::New(env, "libtorch: " + msg), code);
  } catch (const std::bad_alloc&) {
    throwJs(env, Napi::Error::New(env, "out of memory: the allocation failed (std::bad_alloc)"), "ERR_TORCH_OUT_OF_MEMORY");
  } catch (const std::exception& e) {
    std::string msg = cleanTorchMessage(e.what());
    throwJs(env, Napi::Error::New(env, msg), mentionsOutOfMemory(msg) ? "ERR_TORCH_OUT_OF_MEMORY" : "ERR_NATIVE");
  } catch (...) {
    throwJs(env, Napi::Error::New(env, "unknown native exception"), "ERR_NATIVE");
  }
}

}  // namespace dmd
