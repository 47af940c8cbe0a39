// The launch contract: who am I in a multi-process job? torchrun's environment (RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE), else SLURM's
// (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, the first host of SLURM_NODELIST), else one process. So
// `torchrun --no-python --nproc-per-node 8 npx dmd-train ...`, `srun npx dmd-train ...` and a Kubeflow
// PyTorchJob (which sets torchrun's variables) all work. And, for the built-in launcher
// (--nproc-per-node, --nnodes), what this machine starts (planNode). No tensors here.

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

/** What the built-in launcher starts on this machine: `nproc` workers, ranks nodeRank*nproc .. +nproc-1 of nnodes*nproc. */
export interface NodePlan {
  nproc: number;
  nnodes: number;
  nodeRank: number;
  /** node 0's address and the rendezvous port; a null port means a free one on 127.0.0.1 (one node) */
  masterAddr: string;
  masterPort: number | null;
}

export interface LaunchFlags {
  nprocPerNode?: number | undefined;
  nnodes?: number | undefined;
  nodeRank?: number | undefined;
  masterAddr?: string | undefined;
  masterPort?: number | undefined;
}

/**
 * The launcher's plan from the flags, else torchrun's node variables (NNODES, NODE_RANK, MASTER_ADDR,
 * MASTER_PORT), else SLURM's when srun started one task per node (SLURM_NNODES, SLURM_NODEID, the first
 * host of SLURM_JOB_NODELIST); null when this process is itself a rank (RANK set, or srun with one task per
 * GPU) or when one process on one node is asked for. Inconsistent settings are refused naming them.
 */
export function planNode(flags: LaunchFlags, env: NodeJS.ProcessEnv = process.env): NodePlan | null {
  if (env.RANK !== undefined) return null; // started by a launcher: this process is a rank
  const nproc = flags.nprocPerNode ?? 1;
  const slurmTasks = int(env, 'SLURM_NTASKS', 1);
  const slurmNodes = int(env, 'SLURM_NNODES', 1) ?? int(env, 'SLURM_JOB_NUM_NODES', 1);
  const underSrun = env.SLURM_PROCID !== undefined && slurmTasks !== undefined;
  // srun with one task per GPU: each task is a rank (launchFromEnv reads SLURM's variables)
  if (underSrun && slurmNodes !== undefined && slurmTasks! > slurmNodes) {
    if (nproc > 1 || flags.nnodes !== undefined)
      throw new LaunchError(`srun started ${slurmTasks} tasks on ${slurmNodes} node(s), and --nproc-per-node/--nnodes would start more processes from each: use srun --ntasks-per-node=1 with --nproc-per-node, or one task per GPU without these flags`);
    return null;
  }
  const slurm = underSrun && slurmNodes !== undefined;
  const nnodes = flags.nnodes ?? int(env, 'NNODES', 1) ?? (slurm ? slurmNodes : undefined) ?? 1;
  const nodeRank = flags.nodeRank ?? int(env, 'NODE_RANK', 0) ?? (slurm ? int(env, 'SLURM_NODEID', 0) : undefined) ?? 0;
  if (nproc === 1 && nnodes === 1) return null;
  if (nodeRank >= nnodes) throw new LaunchError(`--node-rank ${nodeRank} is not below --nnodes ${nnodes}; number the machines 0..${nnodes - 1}`);
  // one node: 127.0.0.1 and a free port unless the flags say otherwise (an exported MASTER_ADDR is not ours)
  if (nnodes === 1) return { nproc, nnodes, nodeRank, masterAddr: flags.masterAddr ?? '127.0.0.1', masterPort: flags.masterPort ?? null };
  const nodelist = env.SLURM_JOB_NODELIST || env.SLURM_NODELIST;
  const masterAddr = flags.masterAddr ?? (env.MASTER_ADDR || undefined) ?? (slurm && nodelist ? firstSlurmHost(nodelist) : undefined);
  if (masterAddr === undefined) throw new LaunchError(`--nnodes ${nnodes} needs --master-addr (or MASTER_ADDR): the address of node 0 that every node can reach`);
  const masterPort = flags.masterPort ?? int(env, 'MASTER_PORT', 1) ?? (slurm ? DEFAULT_PORT + (Number(env.SLURM_JOB_ID ?? 0) % 1000) : DEFAULT_PORT);
  return { nproc, nnodes, nodeRank, masterAddr, masterPort };
}
