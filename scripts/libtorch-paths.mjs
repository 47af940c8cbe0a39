// Paths and flags of libtorch for binding.gyp (node-gyp builds):
//   include | libs | rpath | defines | cxxflags | sources | info
// Uses $LIBTORCH (official zip or pip torch/ folder) or, failing that, Debian/Ubuntu's libtorch-dev.
// Mirrors CMakeLists.txt: the ABI define comes from TorchConfig.cmake's TORCH_CXX_FLAGS, C++20 for
// libtorch >= 2.12, and a CUDA libtorch adds the CUDA toolkit's include directory and DMD_WITH_CUDA.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const what = process.argv[2];

function fail(msg) {
  console.error(`dmd-torch (binding.gyp): ${msg}`);
  process.exit(1);
}

function locate() {
  const env = process.env.LIBTORCH;
  if (env) {
    if (!existsSync(path.join(env, 'include', 'torch'))) fail(`LIBTORCH=${env} has no include/torch; point it at a libtorch directory (the official zip or pip's torch/ folder)`);
    return {
      include: [path.join(env, 'include'), path.join(env, 'include/torch/csrc/api/include')],
      lib: path.join(env, 'lib'),
      cmake: path.join(env, 'share/cmake/Torch/TorchConfig.cmake'),
    };
  }
  const debLib = '/usr/lib/x86_64-linux-gnu';
  if (existsSync('/usr/include/torch/csrc/api/include/torch/torch.h')) {
    return { include: ['/usr/include', '/usr/include/torch/csrc/api/include'], lib: debLib, cmake: path.join(debLib, 'cmake/Torch/TorchConfig.cmake') };
  }
  fail('libtorch not found: set LIBTORCH=<libtorch dir>, or apt-get install libtorch-dev');
}

/** TORCH_VERSION_MAJOR/MINOR from the headers (torch/headeronly/version.h since 2.9). */
function version(lt) {
  const base = lt.include[0];
  const text = ['torch/headeronly/version.h', 'torch/csrc/api/include/torch/version.h']
    .map((f) => path.join(base, f))
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
  const num = (k) => Number(new RegExp(`#define TORCH_VERSION_${k} (\\d+)`).exec(text)?.[1] ?? NaN);
  return { major: num('MAJOR'), minor: num('MINOR') };
}

/** The -D_GLIBCXX_USE_CXX11_ABI=... define libtorch was built with (TorchConfig.cmake's TORCH_CXX_FLAGS). */
function abiDefine(lt) {
  if (existsSync(lt.cmake)) {
    const m = /set\(TORCH_CXX_FLAGS "[^"]*-D_GLIBCXX_USE_CXX11_ABI=([01])/.exec(readFileSync(lt.cmake, 'utf8'));
    if (m) return `_GLIBCXX_USE_CXX11_ABI=${m[1]}`;
  }
  return '_GLIBCXX_USE_CXX11_ABI=1'; // libtorch >= 2.7 wheels and Debian's packages
}

const isCuda = (lt) => existsSync(path.join(lt.lib, 'libtorch_cuda.so'));

/** The CUDA toolkit's include directory ($CUDA_HOME, $CUDA_PATH, nvcc's, /usr/local/cuda). */
function cudaInclude() {
  const candidates = [process.env.CUDA_HOME, process.env.CUDA_PATH];
  try {
    const nvcc = execFileSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).trim();
    if (nvcc) candidates.push(path.dirname(path.dirname(nvcc)));
  } catch {
    /* no nvcc on PATH */
  }
  candidates.push('/usr/local/cuda');
  for (const c of candidates) if (c && existsSync(path.join(c, 'include', 'cuda_runtime_api.h'))) return path.join(c, 'include');
  fail(
    'this libtorch is a CUDA build (libtorch_cuda.so) but the CUDA toolkit headers were not found; install the CUDA toolkit ' +
      'matching the libtorch wheel and set CUDA_HOME (searched $CUDA_HOME, $CUDA_PATH, nvcc on PATH, /usr/local/cuda)',
  );
}

/** The Gloo headers (libtorch's c10d CPU backend): in libtorch's include dir, else Debian's libgloo-dev. */
function glooInclude(lt) {
  for (const d of [lt.include[0], '/usr/include']) if (existsSync(path.join(d, 'gloo', 'algorithm.h'))) return d;
  return null;
}

/** NCCL's header for the CUDA backend of c10d ($NCCL_HOME, the CUDA toolkit, the nvidia-nccl pip package). */
function ncclInclude(lt) {
  const candidates = [process.env.NCCL_HOME && path.join(process.env.NCCL_HOME, 'include'), path.resolve(lt.lib, '../../nvidia/nccl/include'), '/usr/include'];
  return candidates.find((d) => d && existsSync(path.join(d, 'nccl.h'))) ?? null;
}

const lt = locate();
const v = version(lt);
switch (what) {
  case 'include':
    console.log([...new Set([...lt.include, ...(isCuda(lt) ? [cudaInclude()] : []), ...(glooInclude(lt) ? [glooInclude(lt)] : []), ...(isCuda(lt) && ncclInclude(lt) ? [ncclInclude(lt)] : [])])].join(' '));
    break;
  case 'libs': {
    const libs = ['-ltorch', '-ltorch_cpu', '-lc10'];
    // keep libtorch_cuda linked although no symbol of it is referenced: it registers the CUDA backend
    if (isCuda(lt)) libs.push('-Wl,--no-as-needed', '-ltorch_cuda', '-lc10_cuda', '-Wl,--as-needed');
    console.log([`-L${lt.lib}`, ...libs].join(' '));
    break;
  }
  case 'rpath':
    console.log(`-Wl,-rpath,${lt.lib}`);
    break;
  case 'defines':
    console.log([
      abiDefine(lt), isCuda(lt) ? 'DMD_WITH_CUDA=1' : 'DMD_CPU_ONLY=1',
      ...(glooInclude(lt) ? ['DMD_WITH_GLOO=1', 'USE_C10D_GLOO=1'] : []), ...(isCuda(lt) && ncclInclude(lt) ? ['DMD_WITH_NCCL=1', 'USE_C10D_NCCL=1'] : []),
    ].join(' '));
    break;
  case 'cxxflags':
    console.log(v.major > 2 || (v.major === 2 && v.minor >= 12) ? '-std=c++20' : '-std=c++17');
    break;
  case 'sources':
    console.log(readdirSync(path.join(root, 'native')).filter((f) => f.endsWith('.cc')).map((f) => `native/${f}`).join(' '));
    break;
  case 'info':
    console.log(JSON.stringify({ ...lt, version: `${v.major}.${v.minor}`, cuda: isCuda(lt), abi: abiDefine(lt), gloo: glooInclude(lt), nccl: isCuda(lt) ? ncclInclude(lt) : null }));
    break;
  default:
    console.error('usage: libtorch-paths.mjs include|libs|rpath|defines|cxxflags|sources|info');
    process.exit(2);
}
