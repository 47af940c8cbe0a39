// The single error boundary: every exported function runs inside guarded<F>, which turns any C++
// exception (c10::Error, std::exception, argument errors) into a JS Error with a `code`.
#pragma once
#include <napi.h>

#include <stdexcept>
#include <string>

namespace dmd {

enum class ArgKind { Type, Range };

// Bad arguments detected by the addon itself: become TypeError / RangeError in JS.
struct ArgError : std::runtime_error {
  ArgKind kind;
  ArgError(ArgKind k, const std::string& msg) : std::runtime_error(msg), kind(k) {}
};

[[noreturn]] void throwType(const std::string& msg);
[[noreturn]] void throwRange(const std::string& msg);

// Converts the exception being handled into a thrown Napi::Error (caller must be inside a catch).
[[noreturn]] void rethrowAsJs(Napi::Env env);

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (...) {
    rethrowAsJs(info.Env());
  }
}

}  // namespace dmd
