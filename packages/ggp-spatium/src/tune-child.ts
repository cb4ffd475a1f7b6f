// One process of a parallel SGA run (`tune` with `jobs` > 1, see tune-pool.ts): it loads the sheet once, on the
// reasoner the parent chose, then plays fitness games as they come. stdin: a JSON line `{ kif, engine, strict }`,
// then one JSON line per game `{ id, genome, task }`; stdout: `{ ready: true }` once loaded, `{ id, ply }` after each
// ply (the pool's watchdog reads silence as a hung game) and `{ id, score }` (or `{ id, error }`) per game.
// Games run one at a time, so a CPU-time playclock measures this process's time for one game only.
import { createInterface } from 'node:readline';
import { loadGame } from './game.js';
import type { GameMachine } from './machine.js';
import { type GameTask, type Genome, playFitnessGame } from './tune.js';

let kif = '';
let m: GameMachine | undefined;
let queue = Promise.resolve();
const say = (msg: unknown) => process.stdout.write(`${JSON.stringify(msg)}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const msg = JSON.parse(line) as
    | { kif: string; engine: 'grounded' | 'compiled' | 'interpreter'; strict?: boolean }
    | { id: number; genome: Genome; task: GameTask };
  if ('kif' in msg) {
    kif = msg.kif;
    // the parent's reasoner, without loadGame's time budgets (both sides of every game, in every process, play on
    // the same engine, so iteration-budget runs give the games a one-process run gives)
    m = loadGame(kif, {
      strict: msg.strict,
      engine: msg.engine,
      ...(msg.engine === 'grounded' ? { ground: { maxMs: Number.POSITIVE_INFINITY } } : {}),
    });
    say({ ready: true });
    return;
  }
  queue = queue.then(async () => {
    try {
      if (!m) throw new Error('no sheet loaded');
      const score = await playFitnessGame(kif, msg.genome, msg.task, m, (ply) => say({ id: msg.id, ply }));
      say({ id: msg.id, score });
    } catch (e) {
      say({ id: msg.id, error: (e as Error).message });
    }
  });
});
