// Thread pool settings and build facts.
import { N, type BuildInfo } from '../native.js';

/** Intra-op threads (defaults to the core count at load, or DMD_NUM_THREADS). */
export function setNumThreads(n: number): void { N.setNumThreads(n); }
export function getNumThreads(): number { return N.getNumThreads(); }
export function buildInfo(): BuildInfo { return N.buildInfo(); }
