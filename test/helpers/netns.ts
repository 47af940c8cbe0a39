// Two "hosts" on one machine for multi-node tests: two network namespaces joined by a veth pair with
// private addresses (10.231.N.1 and .2), each with its own loopback. Processes started with `exec` run
// inside a namespace and reach the other one only over the veth link, as two machines would. Needs root
// and iproute2; `netnsUnavailable()` says why not, for a skip. The namespaces are always removed (at
// `remove()` and, failing that, when this process exits); nothing leaves them.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export interface Host {
  ns: string;
  /** the veth interface inside the namespace (for GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME) */
  ifname: string;
  addr: string;
}

export interface HostPair {
  hosts: [Host, Host];
  /** starts `command args` inside the host's namespace */
  exec(host: Host, command: string, args: string[], o?: { env?: NodeJS.ProcessEnv; cwd?: string }): ChildProcess;
  /** SIGKILLs every process inside the host's namespace: the machine dies */
  killAll(host: Host): void;
  remove(): void;
}

function ip(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr || r.error?.message || '').trim() };
}

/** Why network namespaces cannot be made here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'making network namespaces needs root';
  const probe = `dmdprobe${process.pid}`;
  const r = ip(['netns', 'add', probe]);
  if (!r.ok) return `ip netns add failed (${r.err || 'iproute2 missing?'})`;
  ip(['netns', 'del', probe]);
  return null;
}

const live = new Set<string>();
let exitHook = false;
function forget(ns: string): void {
  spawnSync('sh', ['-c', `ip netns pids ${ns} 2>/dev/null | xargs -r kill -9`]);
  ip(['netns', 'del', ns]);
  live.delete(ns);
}

/** Makes the two hosts; `tag` (0-255) keeps the address ranges of concurrent test files apart. */
export function makeHostPair(tag: number): HostPair {
  const base = `dmd${process.pid % 100000}${tag}`;
  const hosts: [Host, Host] = [
    { ns: `${base}a`, ifname: `v${base}a`.slice(0, 15), addr: `10.231.${tag}.1` },
    { ns: `${base}b`, ifname: `v${base}b`.slice(0, 15), addr: `10.231.${tag}.2` },
  ];
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => { for (const ns of [...live]) forget(ns); });
  }
  const steps: string[][] = [
    ...hosts.map((h) => ['netns', 'add', h.ns]),
    ['link', 'add', hosts[0].ifname, 'type', 'veth', 'peer', 'name', hosts[1].ifname],
    ...hosts.flatMap((h) => [
      ['link', 'set', h.ifname, 'netns', h.ns],
      ['-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', h.ifname],
      ['-n', h.ns, 'link', 'set', h.ifname, 'up'],
      ['-n', h.ns, 'link', 'set', 'lo', 'up'],
    ]),
  ];
  for (const s of steps) {
    if (s[0] === 'netns') live.add(s[2]!);
    const r = ip(s);
    if (!r.ok) {
      for (const h of hosts) forget(h.ns);
      ip(['link', 'del', hosts[0].ifname]);
      throw new Error(`ip ${s.join(' ')}: ${r.err}`);
    }
  }
  return {
    hosts,
    exec: (host, command, args, o = {}) => spawn('ip', ['netns', 'exec', host.ns, command, ...args], { cwd: o.cwd, env: o.env ?? process.env }),
    killAll: (host) => { spawnSync('sh', ['-c', `ip netns pids ${host.ns} | xargs -r kill -9`]); },
    remove: () => { for (const h of hosts) forget(h.ns); },
  };
}
