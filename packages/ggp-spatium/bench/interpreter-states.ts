// States per CPU-second of the interpreter alone, for comparing two versions of it in alternating processes:
//   node --import tsx bench/interpreter-states.ts <interpreter module> <sheet.kif> <states>
// From the initial state: isTerminal, every role's legal moves (text, sorted), a seeded random joint move
// (Mulberry32 from seed 1, so two versions visit the same states), nextState; back to the initial state at a
// terminal one. Prints one JSON line. The module is any build of src/interpreter.ts (e.g. an older commit's,
// bundled with esbuild), so the script imports nothing else from this package.
// `moves` (legal moves listed along the way) is the answer check: versions that answer alike print the same count.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modPath, sheet, count] = process.argv.slice(2);
if (!modPath || !sheet) {
  console.error('usage: interpreter-states.ts <interpreter module> <sheet.kif> [states=300]');
  process.exit(2);
}
const mod = await import(pathToFileURL(resolve(modPath)).href);
const m = mod.loadInterpreter(readFileSync(sheet, 'utf8'));
const n = Number(count ?? 300);
let a = 1;
const rand = () => {
  a = (a + 0x6d2b79f5) >>> 0;
  let t = a;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const roles: string[] = m.roles();
let s = m.initialState();
let states = 0;
let moves = 0;
const c0 = process.cpuUsage();
while (states < n) {
  states++;
  if (m.isTerminal(s)) {
    s = m.initialState();
    continue;
  }
  const joint = roles.map((r) => {
    const ls: string[] = m.legalMoves(s, r);
    moves += ls.length;
    return ls[(rand() * ls.length) | 0]!;
  });
  s = m.nextState(s, joint);
}
const c = process.cpuUsage(c0);
const cpuS = (c.user + c.system) / 1e6;
console.log(JSON.stringify({ module: modPath, sheet, states, moves, cpuS, statesPerCpuS: states / cpuS }));
