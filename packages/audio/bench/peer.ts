// Optional benchmark peer: Debian's python3 with torch/torchaudio, timed in a subprocess. Absent in CI (no
// Python there): the peer rows are then skipped with a note. OpenBLAS in that build misdetects this CPU, so it
// runs with OPENBLAS_CORETYPE=Cooperlake (see shared DATA.md); torch is pinned to one thread like our code.
import { spawnSync } from 'node:child_process';

const candidates = [process.env.TESSERA_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[];
let python: string | null | undefined;

export function findTorchPython(): string | null {
  if (python !== undefined) return python;
  python = null;
  for (const c of candidates) {
    const r = spawnSync(c, ['-c', 'import torch, torchaudio'], { encoding: 'utf8' });
    if (r.status === 0) {
      python = c;
      break;
    }
  }
  return python;
}

/** Runs a Python snippet that prints one JSON object on its last line; null when no torch Python is found. */
export function runPeer(code: string): Record<string, number> | null {
  const py = findTorchPython();
  if (!py) return null;
  const r = spawnSync(py, ['-c', code], {
    encoding: 'utf8',
    env: { ...process.env, OPENBLAS_CORETYPE: 'Cooperlake', OMP_NUM_THREADS: '1' },
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) {
    console.log(`peer failed: ${r.stderr.slice(-400)}`);
    return null;
  }
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!);
}

/** CPU seconds (user + system) of this process spent in fn: steadier than wall time on a shared machine. */
export function cpuSeconds(fn: () => void): number {
  const c = process.cpuUsage();
  fn();
  const u = process.cpuUsage(c);
  return (u.user + u.system) / 1e6;
}
