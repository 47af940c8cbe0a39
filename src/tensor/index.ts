export { Tensor, type Operand, type Dims, type ToOptions, type BackwardOptions } from './tensor.js';
export { DTYPES, type DType, isDType, isFloating, ELEMENT_SIZE, type AnyTypedArray } from './dtype.js';
export { type Device, isDevice, checkDevice, isCuda, resolveDevice } from './device.js';
export { tidy, keep, unkeep, dispose, liveTensors, scopeDepth, traceTensors, type TensorSite } from './scope.js';
export {
  zeros, ones, empty, full, arange, linspace, eye, fromArray, tensor, fromBytes, cat, stack, where, einsum, eigh, eigvals,
  type TensorOptions,
} from './create.js';
export { Generator, manualSeed, deriveSeed, rand, randn, randint, randperm, bernoulli, multinomial, type RandomOptions } from './random.js';
export { noGrad, enableGrad, isGradEnabled, autograd, type GradOptions } from './autograd.js';
export { foreach, gradsOf, GradsOf, type TensorList } from './foreach.js';
export { cuda, type CudaMemoryStats } from './cuda.js';
export { setNumThreads, getNumThreads, buildInfo } from './runtime.js';
