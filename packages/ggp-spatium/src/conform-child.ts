// One sheet of a conformance sweep in its own process (see `conformanceSweep`), so that a sheet that runs away in
// time or memory can be stopped without losing the sweep. Arguments: file name playouts seconds grounded(0|1).
// stdout: the report as JSON, rewritten (one line) as each phase starts, so that a killed child still leaves
// what it had; stderr: `phase <name>` and `progress <playouts> <states>` lines for the parent.
import { readFileSync } from 'node:fs';
import { conformSheet } from './conformance.js';

const [file, name, playouts, seconds, grounded] = process.argv.slice(2);
if (!file || !name) {
  process.stderr.write('usage: conform-child <file> <name> <playouts> <seconds> <grounded 0|1>\n');
  process.exitCode = 2;
} else {
  const r = conformSheet(name, readFileSync(file, 'utf8'), {
    playouts: Number(playouts ?? 100),
    timeLimitMs: Number(seconds ?? 20) * 1000,
    seed: 1,
    clock: 'cpu',
    grounded: grounded !== '0',
    onPhase: (phase, rep) => {
      process.stdout.write(`${JSON.stringify(rep)}\n`);
      process.stderr.write(`phase ${phase}\n`);
    },
    onPlayout: (n, states) => process.stderr.write(`progress ${n} ${states}\n`),
  });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
