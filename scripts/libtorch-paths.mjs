// Paths of libtorch for binding.gyp (node-gyp builds): `include`, `libs`, `rpath` or `sources`.
// Uses $LIBTORCH (official zip or pip torch/ folder) or, failing that, Debian/Ubuntu's libtorch-dev.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const what = process.argv[2];

function locate() {
  const env = process.env.LIBTORCH;
  if (env) {
    if (!existsSync(path.join(env, 'include', 'torch'))) {
      console.error(`LIBTORCH=${env} has no include/torch; point it at a libtorch directory (the official zip or pip's torch/ folder)`);
      process.exit(1);
    }
    return { include: [path.join(env, 'include'), path.join(env, 'include/torch/csrc/api/include')], lib: path.join(env, 'lib') };
  }
  const debLib = '/usr/lib/x86_64-linux-gnu';
  if (existsSync('/usr/include/torch/csrc/api/include/torch/torch.h')) {
    return { include: ['/usr/include', '/usr/include/torch/csrc/api/include'], lib: debLib };
  }
  console.error('libtorch not found: set LIBTORCH=<libtorch dir>, or apt-get install libtorch-dev');
  process.exit(1);
}

const lt = locate();
switch (what) {
  case 'include':
    console.log(lt.include.join(' '));
    break;
  case 'libs': {
    const libs = ['-ltorch', '-ltorch_cpu', '-lc10'];
    if (existsSync(path.join(lt.lib, 'libtorch_cuda.so'))) libs.push('-Wl,--no-as-needed', '-ltorch_cuda', '-lc10_cuda', '-Wl,--as-needed');
    console.log([`-L${lt.lib}`, ...libs].join(' '));
    break;
  }
  case 'rpath':
    console.log(`-Wl,-rpath,${lt.lib}`);
    break;
  case 'defines':
    console.log(existsSync(path.join(lt.lib, 'libtorch_cuda.so')) ? 'DMD_WITH_CUDA=1' : 'DMD_CPU_ONLY=1');
    break;
  case 'sources':
    console.log(readdirSync(path.join(root, 'native')).filter((f) => f.endsWith('.cc')).map((f) => `native/${f}`).join(' '));
    break;
  default:
    console.error('usage: libtorch-paths.mjs include|libs|rpath|defines|sources');
    process.exit(2);
}
