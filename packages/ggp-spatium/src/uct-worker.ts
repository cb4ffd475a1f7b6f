// One searcher of ParallelUctPlayer (parallel.ts), run in a worker thread: it loads the rules itself, follows
// the match by replaying the joint moves it is sent, keeps its own UCT tree between moves, and answers each
// search request with its root statistics on its port, then bumps and notifies the shared reply counter so the
// main thread, blocked in Atomics.wait, wakes up.
import { type MessagePort, workerData } from 'node:worker_threads';
import { BoardFeatures } from './features.js';
import { loadGame } from './game.js';
import { UctPlayer } from './players.js';

export interface WorkerInit {
  rules: string;
  /** the reasoner the main thread searches with: the worker loads the same one (see below) */
  engine?: 'grounded' | 'compiled' | 'interpreter';
  role: number;
  seed: number;
  c?: number;
  nodeBudget?: number;
  priorWeight?: number;
  /** feature weights: UCT with spatial features when present */
  weights?: number[];
  port: MessagePort;
  /** Int32Array over a SharedArrayBuffer: [0] counts replies, [1 + index] is set when this worker exits */
  signal: Int32Array;
  index: number;
}

export interface SearchRequest {
  type: 'search';
  id: number;
  /** every joint move since the initial state, as GDL text */
  history: string[][];
  timeMs: number;
  maxIterations?: number;
  /** test hook: the worker dies (exit code 7) instead of searching */
  crash?: boolean;
}

const init = workerData as WorkerInit;

// however the thread ends (process.exit, an uncaught error — loading the rules included, hence before it), tell
// the main thread, which may be blocked waiting
process.on('exit', () => {
  Atomics.store(init.signal, 1 + init.index, 1);
  Atomics.add(init.signal, 0, 1);
  Atomics.notify(init.signal, 0);
});

// lenient: the main thread has already accepted these rules (the protocol server loads a match's rules leniently),
// and a worker that refused them would leave the player searching alone. The reasoner is the main thread's, with
// no time budget: loadGame's 'auto' choice runs on CPU-time budgets, and where the runtime cannot read one thread's
// CPU time (Node < 23.9) a worker's budget counts every busy thread — 16 workers loading at once on 16 cores each
// ran out of the grounder's 5 s after ≈ 0.3 s of their own and searched on the compiler, 5–8× slower per CPU-second
// on breakthrough and reversi. The main thread's load already chose within the budgets.
const m = loadGame(init.rules, {
  strict: false,
  engine: init.engine ?? 'auto',
  ...(init.engine === 'grounded' ? { ground: { maxMs: Number.POSITIVE_INFINITY } } : {}),
});
const player = new UctPlayer({
  c: init.c,
  nodeBudget: init.nodeBudget,
  priorWeight: init.priorWeight,
  bias: init.weights ? new BoardFeatures(init.weights) : undefined,
});
player.start(m, init.role, init.seed);
let state = m.initialState();
let played = 0;

const reply = (msg: unknown) => {
  init.port.postMessage(msg);
  Atomics.add(init.signal, 0, 1);
  Atomics.notify(init.signal, 0);
};

reply({ type: 'ready', id: 0, kind: m.kind });

init.port.on('message', (req: SearchRequest) => {
  if (req.crash) process.exit(7);
  try {
    if (req.history.length < played) {
      // a new line of play (should not happen within a match): start over
      state = m.initialState();
      played = 0;
    }
    for (; played < req.history.length; played++) {
      const joint = req.history[played]!.map((t) => m.parseMove(t)!);
      state = m.next(state, joint);
      player.observe(joint);
    }
    player.select(state, { timeMs: req.timeMs, maxIterations: req.maxIterations });
    reply({ type: 'result', id: req.id, stats: player.rootStats() });
  } catch (e) {
    reply({ type: 'error', id: req.id, message: (e as Error).message });
  }
});
