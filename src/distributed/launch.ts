// The launch contract: who am I in a multi-process job? torchrun's environment (RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE), else SLURM's
// (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, the first host of SLURM_NODELIST), else one process. So
// `torchrun --no-python --nproc-per-node 8 npx dmd-train ...`, `srun npx dmd-train ...` and a Kubeflow
// PyTorchJob (which sets torchrun's variables) all work. No tensors here.

export interface LaunchInfo {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
  /** torchrun's agent already hosts the TCPStore: every rank is a client */
  agentStore: boolean;
  source: 'torchrun' | 'slurm' | 'single';
}

export class LaunchError extends Error {
  readonly code = 'ERR_LAUNCH';
}

const DEFAULT_PORT = 29500;

function int(env: NodeJS.ProcessEnv, name: string, min: number): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new LaunchError(`${name}=${JSON.stringify(v)} is not an integer >= ${min}; fix the launcher's environment`);
  return n;
}

/** The first host of a SLURM node list: "node[01-03,07],gpu5" -> "node01". */
export function firstSlurmHost(list: string): string {
  const first = /^([^,[]+)(\[([^\]]+)\])?/.exec(list.trim());
  if (!first) throw new LaunchError(`SLURM_NODELIST=${JSON.stringify(list)} cannot be read; set MASTER_ADDR`);
  const [, prefix, , range] = first;
  if (!range) return prefix!;
  return prefix! + range.split(',')[0]!.split('-')[0]!;
}

/** Launch variables that must not appear on their own: a launcher that set them half is refused, never run as a single rank 0. */
function checkHalfSet(env: NodeJS.ProcessEnv): void {
  const torchrun = env.RANK !== undefined || env.WORLD_SIZE !== undefined;
  for (const v of ['LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'GROUP_RANK'])
    if (env[v] !== undefined && !torchrun && env.SLURM_PROCID === undefined)
      throw new LaunchError(`${v}=${env[v]} is set but RANK and WORLD_SIZE are not: the launcher set only part of torchrun's variables; set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT together (or unset ${v} to run one process)`);
  if (!torchrun && (env.SLURM_PROCID !== undefined) !== (env.SLURM_NTASKS !== undefined)) {
    const [has, lacks] = env.SLURM_PROCID !== undefined ? ['SLURM_PROCID', 'SLURM_NTASKS'] : ['SLURM_NTASKS', 'SLURM_PROCID'];
    throw new LaunchError(`${has}=${env[has]} is set but ${lacks} is not: launch the ranks with srun (which sets both), or set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT yourself`);
  }
}

export function launchFromEnv(env: NodeJS.ProcessEnv = process.env): LaunchInfo {
  const single: LaunchInfo = { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, masterAddr: '127.0.0.1', masterPort: DEFAULT_PORT, agentStore: false, source: 'single' };
  checkHalfSet(env);
  let info: LaunchInfo;
  if (env.RANK !== undefined || env.WORLD_SIZE !== undefined) {
    const worldSize = int(env, 'WORLD_SIZE', 1);
    const rank = int(env, 'RANK', 0);
    if (worldSize === undefined || rank === undefined) throw new LaunchError('RANK and WORLD_SIZE must be set together (as torchrun sets them)');
    const localRank = int(env, 'LOCAL_RANK', 0) ?? 0;
    const localWorldSize = int(env, 'LOCAL_WORLD_SIZE', 1) ?? worldSize;
    if (worldSize > 1 && !env.MASTER_ADDR) throw new LaunchError(`WORLD_SIZE=${worldSize} but MASTER_ADDR is not set: set MASTER_ADDR and MASTER_PORT to rank 0's address (torchrun does)`);
    info = {
      rank, worldSize, localRank, localWorldSize,
      masterAddr: env.MASTER_ADDR ?? '127.0.0.1',
      masterPort: int(env, 'MASTER_PORT', 1) ?? DEFAULT_PORT,
      agentStore: env.TORCHELASTIC_USE_AGENT_STORE === 'True',
      source: 'torchrun',
    };
  } else if (env.SLURM_PROCID !== undefined && env.SLURM_NTASKS !== undefined) {
    const worldSize = int(env, 'SLURM_NTASKS', 1)!;
    const rank = int(env, 'SLURM_PROCID', 0)!;
    const localRank = int(env, 'SLURM_LOCALID', 0) ?? 0;
    const perNode = /^(\d+)/.exec(env.SLURM_NTASKS_PER_NODE ?? env.SLURM_TASKS_PER_NODE ?? '')?.[1];
    info = {
      rank, worldSize, localRank, localWorldSize: perNode ? Number(perNode) : worldSize,
      masterAddr: env.MASTER_ADDR || (env.SLURM_NODELIST || env.SLURM_JOB_NODELIST ? firstSlurmHost((env.SLURM_NODELIST || env.SLURM_JOB_NODELIST)!) : '127.0.0.1'),
      masterPort: int(env, 'MASTER_PORT', 1) ?? DEFAULT_PORT + (Number(env.SLURM_JOB_ID ?? 0) % 1000),
      agentStore: false,
      source: 'slurm',
    };
  } else {
    return single;
  }
  if (info.rank >= info.worldSize) throw new LaunchError(`rank ${info.rank} is not below the world size ${info.worldSize}; fix the launcher's environment (${info.source})`);
  if (info.localRank >= info.localWorldSize) throw new LaunchError(`LOCAL_RANK ${info.localRank} is not below the local world size ${info.localWorldSize}`);
  return info.worldSize === 1 ? { ...single, source: info.source } : info;
}
