// The built-in launcher's plan: what one machine starts for --nproc-per-node/--nnodes, from the flags,
// torchrun's node variables or SLURM's (srun with one task per node), and the settings it refuses.
import test from 'ava';
import { planNode, LaunchError } from '../../src/distributed/launch.js';
import { withoutLaunchFlags } from '../../src/distributed/spawn.js';

test('one process on one node needs no launcher; a rank started by a launcher never launches', (t) => {
  t.is(planNode({}, {}), null);
  t.is(planNode({ nprocPerNode: 1 }, {}), null);
  t.is(planNode({ nprocPerNode: 4 }, { RANK: '0', WORLD_SIZE: '4', MASTER_ADDR: 'h' }), null);
});

test('one node: 127.0.0.1 and a free port, whatever MASTER_ADDR says', (t) => {
  t.deepEqual(planNode({ nprocPerNode: 4 }, { MASTER_ADDR: 'elsewhere', MASTER_PORT: '1' }), { nproc: 4, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: null });
  t.deepEqual(planNode({ nprocPerNode: 2, masterPort: 4000 }, {}), { nproc: 2, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: 4000 });
});

test('several nodes from the flags, else NNODES/NODE_RANK/MASTER_ADDR/MASTER_PORT', (t) => {
  t.deepEqual(planNode({ nprocPerNode: 8, nnodes: 2, nodeRank: 1, masterAddr: '10.0.0.1' }, {}), { nproc: 8, nnodes: 2, nodeRank: 1, masterAddr: '10.0.0.1', masterPort: 29500 });
  t.deepEqual(planNode({ nprocPerNode: 8 }, { NNODES: '4', NODE_RANK: '3', MASTER_ADDR: 'n0', MASTER_PORT: '2345' }), { nproc: 8, nnodes: 4, nodeRank: 3, masterAddr: 'n0', masterPort: 2345 });
  // the flags win over the environment
  t.deepEqual(planNode({ nprocPerNode: 2, nnodes: 2, nodeRank: 0, masterAddr: 'a', masterPort: 7 }, { NNODES: '4', NODE_RANK: '3', MASTER_ADDR: 'n0', MASTER_PORT: '2345' }), { nproc: 2, nnodes: 2, nodeRank: 0, masterAddr: 'a', masterPort: 7 });
  // one process per node is still a launch (the rank is the node's)
  t.deepEqual(planNode({ nnodes: 2, nodeRank: 1, masterAddr: 'a' }, {}), { nproc: 1, nnodes: 2, nodeRank: 1, masterAddr: 'a', masterPort: 29500 });
});

test('srun with one task per node gives the nodes; one task per GPU makes every task a rank', (t) => {
  const perNode = { SLURM_PROCID: '1', SLURM_NTASKS: '2', SLURM_NNODES: '2', SLURM_NODEID: '1', SLURM_JOB_NODELIST: 'gpu[07-08]', SLURM_JOB_ID: '1234' };
  t.deepEqual(planNode({ nprocPerNode: 8 }, perNode), { nproc: 8, nnodes: 2, nodeRank: 1, masterAddr: 'gpu07', masterPort: 29500 + 234 });
  const perGpu = { SLURM_PROCID: '5', SLURM_NTASKS: '16', SLURM_NNODES: '2', SLURM_NODEID: '0', SLURM_JOB_NODELIST: 'gpu[07-08]' };
  t.is(planNode({}, perGpu), null);
  t.throws(() => planNode({ nprocPerNode: 8 }, perGpu), { instanceOf: LaunchError, message: /srun started 16 tasks on 2 node\(s\), and --nproc-per-node\/--nnodes would start more .* --ntasks-per-node=1/ });
});

test('inconsistent multi-node settings are refused naming them', (t) => {
  t.throws(() => planNode({ nprocPerNode: 2, nnodes: 2, nodeRank: 2, masterAddr: 'a' }, {}), { instanceOf: LaunchError, message: /--node-rank 2 is not below --nnodes 2; number the machines 0\.\.1/ });
  t.throws(() => planNode({ nprocPerNode: 2, nnodes: 2, nodeRank: 1 }, {}), { instanceOf: LaunchError, message: /--nnodes 2 needs --master-addr \(or MASTER_ADDR\)/ });
  t.throws(() => planNode({ nprocPerNode: 2 }, { NNODES: 'two', MASTER_ADDR: 'a' }), { instanceOf: LaunchError, message: /NNODES="two" is not an integer >= 1/ });
  t.throws(() => planNode({ nprocPerNode: 2 }, { NNODES: '2', NODE_RANK: '-1', MASTER_ADDR: 'a' }), { message: /NODE_RANK="-1"/ });
});

test('the workers get the environment, not the launcher flags', (t) => {
  t.deepEqual(
    withoutLaunchFlags(['--steps', '3', '--nproc-per-node', '2', '--x', '--nproc-per-node=4', '--nnodes', '2', '--node-rank=1', '--master-addr', 'h', '--master-port', '9', '--out', 'o']),
    ['--steps', '3', '--x', '--out', 'o'],
  );
});
