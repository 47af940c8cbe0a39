// Thread pool settings and build facts.
import { N, type BuildInfo } from '../native.js';
import { cuda } from './cuda.js';

/** Intra-op threads (defaults to the core count at load, or DMD_NUM_THREADS). */
export function setNumThreads(n: number): void { N.setNumThreads(n); }
export function getNumThreads(): number { return N.getNumThreads(); }

/** What this addon was built against, plus `summary`: 'CPU build', 'CUDA build, no device visible' or 'CUDA build, N devices visible'. */
export function buildInfo(): BuildInfo & { summary: string } { return { ...N.buildInfo(), summary: cuda.describeBuild() }; }
