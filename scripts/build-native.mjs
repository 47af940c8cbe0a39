// Builds the libtorch N-API addon with cmake-js (offline: node headers come from the running node,
// see "binary.napi_versions" in package.json). libtorch is located by CMakeLists.txt.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const jobs = process.env.DMD_BUILD_JOBS ?? String(availableParallelism());
const args = [cmakeJs, 'compile', '--parallel', jobs];
if (process.env.DMD_DEBUG_BUILD) args.push('--debug');
if (process.env.CMAKE_PREFIX_PATH) args.push(`--CDCMAKE_PREFIX_PATH=${process.env.CMAKE_PREFIX_PATH}`);
if (process.env.Torch_DIR) args.push(`--CDTorch_DIR=${process.env.Torch_DIR}`);
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.error('\ndmd-torch: building the native addon failed (see the CMake output above).');
  process.exit(result.status ?? 1);
}
const addon = path.join(root, 'build', 'Release', 'dmd_torch.node');
if (!existsSync(addon)) {
  console.error('dmd-torch: the build finished but build/Release/dmd_torch.node is missing.');
  process.exit(1);
}
const check = spawnSync(process.execPath, [path.join(root, 'scripts', 'check-addon.mjs'), addon], { stdio: 'inherit' });
if (check.status !== 0) process.exit(check.status ?? 1);
