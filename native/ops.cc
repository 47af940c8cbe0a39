// The op table: elementwise, reductions, shape and indexing, linear algebra. Families of ops share
// one N-API entry point selected by an integer id; the names are exported so the TS layer builds its
// id map from this file (single source).
#include "common.h"

namespace dmd {

namespace {

using Unary = at::Tensor (*)(const at::Tensor&);
using UnaryInplace = void (*)(at::Tensor&);
using Binary = at::Tensor (*)(const at::Tensor&, const at::Tensor&);
using BinaryInplace = void (*)(at::Tensor&, const at::Tensor&);

struct UnaryOp { const char* name; Unary out; UnaryInplace inplace; };
struct BinaryOp { const char* name; Binary out; BinaryInplace inplace; };

#define U(name, expr, ipexpr) {name, [](const at::Tensor& t) -> at::Tensor { return expr; }, ipexpr}
#define IP(expr) [](at::Tensor& t) { expr; }
const UnaryOp kUnary[] = {
    U("neg", t.neg(), IP(t.neg_())),
    U("exp", t.exp(), IP(t.exp_())),
    U("log", t.log(), IP(t.log_())),
    U("log2", t.log2(), IP(t.log2_())),
    U("log1p", t.log1p(), IP(t.log1p_())),
    U("expm1", t.expm1(), IP(t.expm1_())),
    U("sqrt", t.sqrt(), IP(t.sqrt_())),
    U("rsqrt", t.rsqrt(), IP(t.rsqrt_())),
    U("abs", t.abs(), IP(t.abs_())),
    U("sign", t.sign(), IP(t.sign_())),
    U("sin", t.sin(), IP(t.sin_())),
    U("cos", t.cos(), IP(t.cos_())),
    U("tan", t.tan(), IP(t.tan_())),
    U("tanh", t.tanh(), IP(t.tanh_())),
    U("sigmoid", t.sigmoid(), IP(t.sigmoid_())),
    U("silu", at::silu(t), IP(at::silu_(t))),
    U("relu", t.relu(), IP(t.relu_())),
    U("gelu", at::gelu(t), nullptr),
    U("softplus", at::softplus(t), nullptr),
    U("floor", t.floor(), IP(t.floor_())),
    U("ceil", t.ceil(), IP(t.ceil_())),
    U("round", t.round(), IP(t.round_())),
    U("trunc", t.trunc(), IP(t.trunc_())),
    U("reciprocal", t.reciprocal(), IP(t.reciprocal_())),
    U("square", t.square(), IP(t.square_())),
    U("erf", t.erf(), IP(t.erf_())),
    U("isnan", t.isnan(), nullptr),
    U("isinf", t.isinf(), nullptr),
    U("isfinite", t.isfinite(), nullptr),
    U("logicalNot", t.logical_not(), nullptr),
    U("contiguous", t.contiguous(), nullptr),
    U("clone", t.clone(), nullptr),
    U("detach", t.detach(), IP(t.detach_())),
    U("zerosLike", at::zeros_like(t), IP(t.zero_())),
    U("onesLike", at::ones_like(t), nullptr),
    U("emptyLike", at::empty_like(t), nullptr),
};
#undef U
#undef IP

#define B(name, expr, ipexpr) \
  {name, [](const at::Tensor& a, const at::Tensor& b) -> at::Tensor { return expr; }, ipexpr}
#define BIP(expr) [](at::Tensor& a, const at::Tensor& b) { expr; }
const BinaryOp kBinary[] = {
    B("add", at::add(a, b), BIP(a.add_(b))),
    B("sub", at::sub(a, b), BIP(a.sub_(b))),
    B("mul", at::mul(a, b), BIP(a.mul_(b))),
    B("div", at::div(a, b), BIP(a.div_(b))),
    B("pow", at::pow(a, b), BIP(a.pow_(b))),
    B("maximum", at::maximum(a, b), nullptr),
    B("minimum", at::minimum(a, b), nullptr),
    B("atan2", at::atan2(a, b), BIP(a.atan2_(b))),
    B("fmod", at::fmod(a, b), BIP(a.fmod_(b))),
    B("remainder", at::remainder(a, b), BIP(a.remainder_(b))),
    B("eq", at::eq(a, b), nullptr),
    B("ne", at::ne(a, b), nullptr),
    B("lt", at::lt(a, b), nullptr),
    B("le", at::le(a, b), nullptr),
    B("gt", at::gt(a, b), nullptr),
    B("ge", at::ge(a, b), nullptr),
    B("logicalAnd", at::logical_and(a, b), nullptr),
    B("logicalOr", at::logical_or(a, b), nullptr),
    B("logicalXor", at::logical_xor(a, b), nullptr),
    B("floorDivide", at::div(a, b, "floor"), nullptr),
    B("copy", b.to(a.options()).clone(), BIP(a.copy_(b))),
    B("matmul", at::matmul(a, b), nullptr),
    B("mm", at::mm(a, b), nullptr),
    B("bmm", at::bmm(a, b), nullptr),
    B("outer", at::outer(a, b), nullptr),
};
#undef B
#undef BIP

template <typename T, size_t N>
const T& pick(const T (&table)[N], const Napi::CallbackInfo& info, const char* what) {
  int64_t id = intArg(info, 0);
  if (id < 0 || id >= static_cast<int64_t>(N)) throwRange(std::string("unknown ") + what + " op id " + std::to_string(id));
  return table[id];
}

template <typename T, size_t N>
Napi::Value names(Napi::Env env, const T (&table)[N]) {
  Napi::Array arr = Napi::Array::New(env, N);
  for (size_t i = 0; i < N; ++i) arr.Set(static_cast<uint32_t>(i), Napi::String::New(env, table[i].name));
  return arr;
}

// unary(id, t)
Napi::Value UnaryFn(const Napi::CallbackInfo& info) {
  const UnaryOp& op = pick(kUnary, info, "unary");
  return wrap(info.Env(), op.out(tensorArg(info, 1)));
}
// unaryInplace(id, t)
Napi::Value UnaryInplaceFn(const Napi::CallbackInfo& info) {
  const UnaryOp& op = pick(kUnary, info, "unary");
  if (!op.inplace) throwType(std::string(op.name) + " has no in-place form");
  op.inplace(tensorArg(info, 1));
  return info.Env().Undefined();
}

// binary(id, a, b): either operand may be a JS number (a wrapped scalar), at least one a tensor
Napi::Value BinaryFn(const Napi::CallbackInfo& info) {
  const BinaryOp& op = pick(kBinary, info, "binary");
  TensorHandle* ha = TensorHandle::From(info[1]);
  if (ha) return wrap(info.Env(), op.out(ha->tensor(), operandArg(info, 2, ha->tensor())));
  const at::Tensor& b = tensorArg(info, 2);
  return wrap(info.Env(), op.out(operandArg(info, 1, b), b));
}
// binaryInplace(id, a, b)
Napi::Value BinaryInplaceFn(const Napi::CallbackInfo& info) {
  const BinaryOp& op = pick(kBinary, info, "binary");
  if (!op.inplace) throwType(std::string(op.name) + " has no in-place form");
  at::Tensor& a = tensorArg(info, 1);
  op.inplace(a, operandArg(info, 2, a));
  return info.Env().Undefined();
}
// addScaled(a, b, alpha, inplace): a + alpha * b
Napi::Value AddScaled(const Napi::CallbackInfo& info) {
  at::Tensor& a = tensorArg(info, 0);
  at::Tensor b = operandArg(info, 1, a);
  at::Scalar alpha = scalarArg(info, 2);
  if (boolArgOr(info, 3, false)) {
    a.add_(b, alpha);
    return info.Env().Undefined();
  }
  return wrap(info.Env(), at::add(a, b, alpha));
}

// ---- reductions ---------------------------------------------------------------------------------
enum ReduceId { kSum, kMean, kAmax, kAmin, kLogsumexp, kAll, kAny, kNansum, kProd };
const char* kReduceNames[] = {"sum", "mean", "amax", "amin", "logsumexp", "all", "any", "nansum", "prod"};

// reduce(id, t, dims|null, keepdim)
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  int64_t id = intArg(info, 0);
  at::Tensor& t = tensorArg(info, 1);
  auto dimsOpt = optIntListArg(info, 2);
  bool keep = boolArgOr(info, 3, false);
  std::vector<int64_t> dims;
  if (dimsOpt) {
    dims = *dimsOpt;
  } else {
    for (int64_t d = 0; d < t.dim(); ++d) dims.push_back(d);
  }
  at::Tensor r;
  switch (id) {
    case kSum: r = dimsOpt ? t.sum(dims, keep) : (keep ? t.sum(dims, true) : t.sum()); break;
    case kMean: r = dimsOpt ? t.mean(dims, keep) : (keep ? t.mean(dims, true) : t.mean()); break;
    case kAmax: r = t.amax(dims, keep); break;
    case kAmin: r = t.amin(dims, keep); break;
    case kLogsumexp: r = t.logsumexp(dims, keep); break;
    case kNansum: r = t.nansum(dims, keep); break;
    case kAll: case kAny: {
      r = t;
      std::vector<int64_t> sorted = dims;
      for (auto& d : sorted) d = c10::maybe_wrap_dim(d, t.dim());
      std::sort(sorted.rbegin(), sorted.rend());
      if (!dimsOpt && !keep) { r = id == kAll ? t.all() : t.any(); break; }
      for (int64_t d : sorted) r = id == kAll ? r.all(d, keep) : r.any(d, keep);
      break;
    }
    case kProd: {
      if (!dimsOpt) { r = keep ? t.prod().reshape(std::vector<int64_t>(t.dim(), 1)) : t.prod(); break; }
      if (dims.size() != 1) throwRange("prod reduces over exactly one dim");
      r = t.prod(dims[0], keep);
      break;
    }
    default: throwRange("unknown reduction id " + std::to_string(id));
  }
  return wrap(info.Env(), r);
}

// stdVar(isStd, t, dims|null, correction, keepdim)
Napi::Value StdVar(const Napi::CallbackInfo& info) {
  bool isStd = boolArgOr(info, 0, true);
  at::Tensor& t = tensorArg(info, 1);
  auto dims = optIntListArg(info, 2);
  int64_t correction = intArgOr(info, 3, 1);
  bool keep = boolArgOr(info, 4, false);
  at::OptionalIntArrayRef d = dims ? at::OptionalIntArrayRef(*dims) : at::OptionalIntArrayRef();
  // The correction must be an optional: a plain integer binds the legacy `bool unbiased` overload,
  // where any non-zero correction acts as 1.
#if DMD_TORCH_AT_LEAST(2, 0)
  const c10::optional<at::Scalar> c(correction);
#else
  const c10::optional<int64_t> c(correction);
#endif
  return wrap(info.Env(), isStd ? at::std(t, d, c, keep) : at::var(t, d, c, keep));
}

// norm(t, p, dims|null, keepdim)
Napi::Value Norm(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  double p = numberArgOr(info, 1, 2.0);
  auto dims = optIntListArg(info, 2);
  bool keep = boolArgOr(info, 3, false);
  if (!dims) return wrap(info.Env(), keep ? at::linalg_vector_norm(t, p, c10::nullopt, true) : at::linalg_vector_norm(t, p));
  return wrap(info.Env(), at::linalg_vector_norm(t, p, *dims, keep));
}

// argExtreme(isMax, t, dim|null, keepdim)
Napi::Value ArgExtreme(const Napi::CallbackInfo& info) {
  bool isMax = boolArgOr(info, 0, true);
  at::Tensor& t = tensorArg(info, 1);
  c10::optional<int64_t> dim;
  if (!isNullish(info[2])) dim = intArg(info, 2);
  bool keep = boolArgOr(info, 3, false);
  return wrap(info.Env(), isMax ? at::argmax(t, dim, keep) : at::argmin(t, dim, keep));
}

// extremeDim(isMax, t, dim, keepdim) -> [values, indices]
Napi::Value ExtremeDim(const Napi::CallbackInfo& info) {
  bool isMax = boolArgOr(info, 0, true);
  at::Tensor& t = tensorArg(info, 1);
  int64_t dim = intArg(info, 2);
  bool keep = boolArgOr(info, 3, false);
  auto r = isMax ? at::max(t, dim, keep) : at::min(t, dim, keep);
  return wrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}

Napi::Value Cumsum(const Napi::CallbackInfo& info) { return wrap(info.Env(), at::cumsum(tensorArg(info, 0), intArg(info, 1))); }

// ---- shape and indexing -----------------------------------------------------------------------------
Napi::Value Reshape(const Napi::CallbackInfo& info) { return wrap(info.Env(), tensorArg(info, 0).reshape(intListArg(info, 1))); }
Napi::Value View(const Napi::CallbackInfo& info) { return wrap(info.Env(), tensorArg(info, 0).view(intListArg(info, 1))); }
Napi::Value Permute(const Napi::CallbackInfo& info) { return wrap(info.Env(), tensorArg(info, 0).permute(intListArg(info, 1))); }
Napi::Value Transpose(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).transpose(intArg(info, 1), intArg(info, 2)));
}
Napi::Value Squeeze(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  return wrap(info.Env(), isNullish(info[1]) ? t.squeeze() : t.squeeze(intArg(info, 1)));
}
Napi::Value Unsqueeze(const Napi::CallbackInfo& info) { return wrap(info.Env(), tensorArg(info, 0).unsqueeze(intArg(info, 1))); }
Napi::Value Flatten(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).flatten(intArgOr(info, 1, 0), intArgOr(info, 2, -1)));
}
Napi::Value Expand(const Napi::CallbackInfo& info) { return wrap(info.Env(), tensorArg(info, 0).expand(intListArg(info, 1))); }
Napi::Value Repeat(const Napi::CallbackInfo& info) { return wrap(info.Env(), tensorArg(info, 0).repeat(intListArg(info, 1))); }
Napi::Value Flip(const Napi::CallbackInfo& info) { return wrap(info.Env(), tensorArg(info, 0).flip(intListArg(info, 1))); }
Napi::Value Roll(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).roll(intListArg(info, 1), intListArg(info, 2)));
}
// slice(t, dim, start|null, end|null, step)
Napi::Value Slice(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  int64_t dim = intArg(info, 1);
  c10::optional<int64_t> start, end;
  if (!isNullish(info[2])) start = intArg(info, 2);
  if (!isNullish(info[3])) end = intArg(info, 3);
  int64_t step = intArgOr(info, 4, 1);
  if (step <= 0) throwRange("slice: step must be positive");
  return wrap(info.Env(), t.slice(dim, start, end, step));
}
// asStrided(t, size, stride, offset): a view of t's storage (saved tensors that share one); checked
// against the storage's bounds here so a damaged file is an error, never a read past the allocation
Napi::Value AsStrided(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  std::vector<int64_t> size = intListArg(info, 1), stride = intListArg(info, 2);
  int64_t offset = intArg(info, 3);
  if (size.size() != stride.size()) throwRange("asStrided: size and stride differ in length");
  if (offset < 0) throwRange("asStrided: negative storage offset");
  int64_t last = offset;
  bool empty = false;
  for (size_t i = 0; i < size.size(); ++i) {
    if (size[i] < 0 || stride[i] < 0) throwRange("asStrided: negative size or stride");
    if (size[i] == 0) empty = true;
    else last += (size[i] - 1) * stride[i];
  }
  const int64_t avail = static_cast<int64_t>(t.storage().nbytes() / t.element_size());
  if (!empty && last >= avail)
    throwRange("asStrided: the view needs " + std::to_string(last + 1) + " elements of a storage of " + std::to_string(avail));
  return wrap(info.Env(), t.as_strided(size, stride, offset));
}
Napi::Value Select(const Napi::CallbackInfo& info) { return wrap(info.Env(), tensorArg(info, 0).select(intArg(info, 1), intArg(info, 2))); }
Napi::Value IndexSelect(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0).index_select(intArg(info, 1), tensorArg(info, 2)));
}
Napi::Value Gather(const Napi::CallbackInfo& info) { return wrap(info.Env(), tensorArg(info, 0).gather(intArg(info, 1), tensorArg(info, 2))); }
// scatter(t, dim, index, src|number)
Napi::Value Scatter(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  int64_t dim = intArg(info, 1);
  at::Tensor& idx = tensorArg(info, 2);
  if (TensorHandle* h = TensorHandle::From(info[3])) return wrap(info.Env(), t.scatter(dim, idx, h->tensor()));
  return wrap(info.Env(), t.scatter(dim, idx, scalarArg(info, 3)));
}
// indexPut(t, index (int64 along dim 0 or bool mask), values) in place
Napi::Value IndexPut(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  c10::List<c10::optional<at::Tensor>> idx;
  idx.push_back(tensorArg(info, 1));
  at::Tensor v = operandArg(info, 2, t);
  t.index_put_(idx, v.scalar_type() == t.scalar_type() ? v : v.to(t.scalar_type()));
  return info.Env().Undefined();
}
Napi::Value Cat(const Napi::CallbackInfo& info) { return wrap(info.Env(), at::cat(tensorListArg(info, 0), intArgOr(info, 1, 0))); }
Napi::Value Stack(const Napi::CallbackInfo& info) { return wrap(info.Env(), at::stack(tensorListArg(info, 0), intArgOr(info, 1, 0))); }
// split(t, sizeOrSizes, dim)
Napi::Value Split(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  int64_t dim = intArgOr(info, 2, 0);
  if (info[1].IsArray()) return wrapList(info.Env(), t.split_with_sizes(intListArg(info, 1), dim));
  return wrapList(info.Env(), t.split(intArg(info, 1), dim));
}
Napi::Value Chunk(const Napi::CallbackInfo& info) {
  return wrapList(info.Env(), tensorArg(info, 0).chunk(intArg(info, 1), intArgOr(info, 2, 0)));
}
// maskedFill(t, mask, value)
Napi::Value MaskedFill(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  return wrap(info.Env(), t.masked_fill(tensorArg(info, 1), operandArg(info, 2, t)));
}
// where(cond, a, b): a and b may be numbers
Napi::Value Where(const Napi::CallbackInfo& info) {
  at::Tensor& c = tensorArg(info, 0);
  TensorHandle* ha = TensorHandle::From(info[1]);
  TensorHandle* hb = TensorHandle::From(info[2]);
  const at::Tensor& like = ha ? ha->tensor() : hb ? hb->tensor() : c;
  at::Tensor a = operandArg(info, 1, like), b = operandArg(info, 2, like);
  if (!ha && !hb) {
    a = a.to(at::kFloat);
    b = b.to(at::kFloat);
  }
  return wrap(info.Env(), at::where(c, a, b));
}
// clamp(t, min|null, max|null, inplace)
Napi::Value Clamp(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  c10::optional<at::Scalar> lo, hi;
  if (!isNullish(info[1])) lo = scalarArg(info, 1);
  if (!isNullish(info[2])) hi = scalarArg(info, 2);
  if (!lo && !hi) throwType("clamp: give min, max or both");
  if (boolArgOr(info, 3, false)) {
    t.clamp_(lo, hi);
    return info.Env().Undefined();
  }
  return wrap(info.Env(), t.clamp(lo, hi));
}
// nanToNum(t, nan, posinf|null, neginf|null)
Napi::Value NanToNum(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  return wrap(info.Env(), at::nan_to_num(t, numberArgOr(info, 1, 0.0), optNumberArg(info, 2), optNumberArg(info, 3)));
}
// lerp(a, b, weight number|tensor, inplace)
Napi::Value Lerp(const Napi::CallbackInfo& info) {
  at::Tensor& a = tensorArg(info, 0);
  at::Tensor& b = tensorArg(info, 1);
  bool inplace = boolArgOr(info, 3, false);
  if (TensorHandle* w = TensorHandle::From(info[2])) {
    if (inplace) { a.lerp_(b, w->tensor()); return info.Env().Undefined(); }
    return wrap(info.Env(), at::lerp(a, b, w->tensor()));
  }
  at::Scalar w = numberArg(info, 2);
  if (inplace) { a.lerp_(b, w); return info.Env().Undefined(); }
  return wrap(info.Env(), at::lerp(a, b, w));
}
// addcmul(t, t1, t2, value, inplace) / addcdiv
Napi::Value Addcmul(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  at::Scalar v = scalarArg(info, 3);
  if (boolArgOr(info, 4, false)) { t.addcmul_(tensorArg(info, 1), tensorArg(info, 2), v); return info.Env().Undefined(); }
  return wrap(info.Env(), at::addcmul(t, tensorArg(info, 1), tensorArg(info, 2), v));
}
Napi::Value Addcdiv(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  at::Scalar v = scalarArg(info, 3);
  if (boolArgOr(info, 4, false)) { t.addcdiv_(tensorArg(info, 1), tensorArg(info, 2), v); return info.Env().Undefined(); }
  return wrap(info.Env(), at::addcdiv(t, tensorArg(info, 1), tensorArg(info, 2), v));
}
// fill_(t, value)
Napi::Value Fill(const Napi::CallbackInfo& info) {
  tensorArg(info, 0).fill_(scalarArg(info, 1));
  return info.Env().Undefined();
}
// to(t, dtype|null, device|null, copy)
Napi::Value To(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0);
  auto dt = optDtypeArg(info, 1).value_or(t.scalar_type());
  auto dev = optDeviceArg(info, 2).value_or(t.device());
  bool copy = boolArgOr(info, 3, false);
  return wrap(info.Env(), t.to(dev, dt, /*non_blocking=*/false, copy));
}
// einsum(equation, tensors)
Napi::Value Einsum(const Napi::CallbackInfo& info) { return wrap(info.Env(), at::einsum(stringArg(info, 0), tensorListArg(info, 1))); }
// topk(t, k, dim, largest, sorted) -> [values, indices]
Napi::Value Topk(const Napi::CallbackInfo& info) {
  auto r = at::topk(tensorArg(info, 0), intArg(info, 1), intArgOr(info, 2, -1), boolArgOr(info, 3, true), boolArgOr(info, 4, true));
  return wrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
// sort(t, dim, descending) -> [values, indices]
Napi::Value Sort(const Napi::CallbackInfo& info) {
  auto r = at::sort(tensorArg(info, 0), intArgOr(info, 1, -1), boolArgOr(info, 2, false));
  return wrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
// bincount(t, minlength)
Napi::Value Bincount(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::bincount(tensorArg(info, 0), c10::nullopt, intArgOr(info, 1, 0)));
}
// allclose(a, b, rtol, atol)
Napi::Value Allclose(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::allclose(tensorArg(info, 0), tensorArg(info, 1), numberArgOr(info, 2, 1e-5), numberArgOr(info, 3, 1e-8)));
}
// equal(a, b): same shape and values
Napi::Value Equal(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::equal(tensorArg(info, 0), tensorArg(info, 1)));
}

// ---- linear algebra (used by the Fréchet distance) ------------------------------------------------
// eigh(t) -> [eigenvalues, eigenvectors]
Napi::Value Eigh(const Napi::CallbackInfo& info) {
  auto r = at::linalg_eigh(tensorArg(info, 0));
  return wrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
// eigvals(t) -> [real, imag]
Napi::Value Eigvals(const Napi::CallbackInfo& info) {
  at::Tensor ev = at::linalg_eigvals(tensorArg(info, 0));
  return wrapList(info.Env(), {at::real(ev).clone(), at::imag(ev).clone()});
}
Napi::Value Diagonal(const Napi::CallbackInfo& info) { return wrap(info.Env(), tensorArg(info, 0).diagonal(intArgOr(info, 1, 0), -2, -1)); }
Napi::Value Tril(const Napi::CallbackInfo& info) { return wrap(info.Env(), tensorArg(info, 0).tril(intArgOr(info, 1, 0))); }

Napi::Value OpNames(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("unary", names(env, kUnary));
  o.Set("binary", names(env, kBinary));
  Napi::Array r = Napi::Array::New(env, std::size(kReduceNames));
  for (size_t i = 0; i < std::size(kReduceNames); ++i) r.Set(static_cast<uint32_t>(i), kReduceNames[i]);
  o.Set("reduce", r);
  return o;
}

}  // namespace

void registerOps(Napi::Env env, Exports exports) {
  exports.Set("opNames", OpNames(env));
  DMD_EXPORT(exports, env, "unary", UnaryFn);
  DMD_EXPORT(exports, env, "unaryInplace", UnaryInplaceFn);
  DMD_EXPORT(exports, env, "binary", BinaryFn);
  DMD_EXPORT(exports, env, "binaryInplace", BinaryInplaceFn);
  DMD_EXPORT(exports, env, "addScaled", AddScaled);
  DMD_EXPORT(exports, env, "reduce", Reduce);
  DMD_EXPORT(exports, env, "stdVar", StdVar);
  DMD_EXPORT(exports, env, "norm", Norm);
  DMD_EXPORT(exports, env, "argExtreme", ArgExtreme);
  DMD_EXPORT(exports, env, "extremeDim", ExtremeDim);
  DMD_EXPORT(exports, env, "cumsum", Cumsum);
  DMD_EXPORT(exports, env, "reshape", Reshape);
  DMD_EXPORT(exports, env, "view", View);
  DMD_EXPORT(exports, env, "permute", Permute);
  DMD_EXPORT(exports, env, "transpose", Transpose);
  DMD_EXPORT(exports, env, "squeeze", Squeeze);
  DMD_EXPORT(exports, env, "unsqueeze", Unsqueeze);
  DMD_EXPORT(exports, env, "flatten", Flatten);
  DMD_EXPORT(exports, env, "expand", Expand);
  DMD_EXPORT(exports, env, "repeat", Repeat);
  DMD_EXPORT(exports, env, "flip", Flip);
  DMD_EXPORT(exports, env, "roll", Roll);
  DMD_EXPORT(exports, env, "slice", Slice);
  DMD_EXPORT(exports, env, "select", Select);
  DMD_EXPORT(exports, env, "asStrided", AsStrided);
  DMD_EXPORT(exports, env, "indexSelect", IndexSelect);
  DMD_EXPORT(exports, env, "gather", Gather);
  DMD_EXPORT(exports, env, "scatter", Scatter);
  DMD_EXPORT(exports, env, "indexPut", IndexPut);
  DMD_EXPORT(exports, env, "cat", Cat);
  DMD_EXPORT(exports, env, "stack", Stack);
  DMD_EXPORT(exports, env, "split", Split);
  DMD_EXPORT(exports, env, "chunk", Chunk);
  DMD_EXPORT(exports, env, "maskedFill", MaskedFill);
  DMD_EXPORT(exports, env, "where", Where);
  DMD_EXPORT(exports, env, "clamp", Clamp);
  DMD_EXPORT(exports, env, "nanToNum", NanToNum);
  DMD_EXPORT(exports, env, "lerp", Lerp);
  DMD_EXPORT(exports, env, "addcmul", Addcmul);
  DMD_EXPORT(exports, env, "addcdiv", Addcdiv);
  DMD_EXPORT(exports, env, "fill", Fill);
  DMD_EXPORT(exports, env, "to", To);
  DMD_EXPORT(exports, env, "einsum", Einsum);
  DMD_EXPORT(exports, env, "topk", Topk);
  DMD_EXPORT(exports, env, "sort", Sort);
  DMD_EXPORT(exports, env, "bincount", Bincount);
  DMD_EXPORT(exports, env, "allclose", Allclose);
  DMD_EXPORT(exports, env, "equal", Equal);
  DMD_EXPORT(exports, env, "eigh", Eigh);
  DMD_EXPORT(exports, env, "eigvals", Eigvals);
  DMD_EXPORT(exports, env, "diagonal", Diagonal);
  DMD_EXPORT(exports, env, "tril", Tril);
}

}  // namespace dmd
