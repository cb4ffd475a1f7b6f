// Root-parallel UCT over worker threads (Cazenave & Jouandeau 2007; Chaslot, Winands & van den Herik 2008):
// each searcher grows its own tree from the same root with its own seed; at the deadline their root
// statistics — visits and value sums per move of our role — are summed and the most visited move is played.
// The main thread is one of the searchers, so `threads: 1` is plain UCT. `select` stays synchronous (the
// Player API): the main thread searches, then sleeps in Atomics.wait on a shared counter that workers bump
// after posting their answer, and reads the answers with receiveMessageOnPort. A worker that dies sets its
// flag from its exit handler; one that does not answer in time is given up on; either way the move is chosen
// from the searchers that did answer (at worst the main thread's own tree) and the failure is kept as a
// WorkerCrashError. Workers follow the match by replaying the joint moves: they need the rules (`rules`
// option, or `setRules`, which LocalAgent and the protocol server call) and a player that is told every joint
// move (`observe`); without them the search runs on the main thread alone.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { tsxEntry } from './child.js';
import { GgpError } from './errors.js';
import { BoardFeatures } from './features.js';
import type { GameMachine } from './machine.js';
import { type Player, type RootStats, type SearchOptions, UctPlayer } from './players.js';
import type { SearchRequest, WorkerInit } from './uct-worker.js';

/** A search worker died, failed or did not answer in time; the move came from the other searchers. */
export class WorkerCrashError extends GgpError {
  constructor(
    readonly worker: number,
    readonly reason: string,
  ) {
    super(`search worker ${worker} ${reason}`);
  }
}

/** Sums root statistics by move text (moves missing from a part count as unvisited there). */
export function mergeRootStats(parts: readonly RootStats[]): RootStats {
  const at = new Map<string, number>();
  const out: RootStats = { moves: [], n: [], w: [], iterations: 0 };
  for (const p of parts) {
    out.iterations += p.iterations;
    p.moves.forEach((mv, i) => {
      let k = at.get(mv);
      if (k === undefined) {
        k = out.moves.length;
        at.set(mv, k);
        out.moves.push(mv);
        out.n.push(0);
        out.w.push(0);
      }
      out.n[k]! += p.n[i]!;
      out.w[k]! += p.w[i]!;
    });
  }
  return out;
}

export interface ParallelUctOptions {
  /** searchers in all, the main thread included (default 2) */
  threads?: number;
  /** the rule sheet, for the workers (else `setRules` before `start`) */
  rules?: string;
  c?: number;
  nodeBudget?: number;
  priorWeight?: number;
  /** spatial feature weights: every searcher uses BoardFeatures with them */
  weights?: number[];
  /** how long past the time budget a worker may take before it counts as hung (ms; default 1000, or 60 s
   * for iteration-bounded searches) */
  graceMs?: number;
  /** how long `start` waits for the workers to load the rules (ms, default 5000); later ones join later */
  readyWaitMs?: number;
  name?: string;
}

interface Slot {
  worker: Worker;
  port: MessagePort;
  /** loaded the rules and listening */
  ready: boolean;
  /** the reasoner it loaded (`GameMachine.kind`), once ready */
  kind?: string;
  dead: boolean;
  /** id of an unanswered request (0: idle) and when it was sent */
  busy: number;
  since: number;
}

const KINDS = new Set(['grounded', 'compiled', 'interpreter']);

/** a worker that has not answered for this long is stopped */
const HUNG_MS = 60_000;

function spawn(
  init: Omit<WorkerInit, 'port' | 'signal' | 'index'>,
  port: MessagePort,
  signal: Int32Array,
  index: number,
) {
  const workerData = { ...init, port, signal, index };
  const js = new URL('./uct-worker.js', import.meta.url);
  if (import.meta.url.endsWith('.js') && existsSync(fileURLToPath(js)))
    return new Worker(js, { workerData, transferList: [port] });
  // running from the TypeScript sources: load the worker through tsx's loader
  const api = tsxEntry('tsx/esm/api');
  if (!api) throw new WorkerCrashError(index, 'cannot start: no built worker and no TypeScript loader (tsx)');
  const ts = new URL('./uct-worker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(api)}).then((t) => { t.register(); return import(${JSON.stringify(ts)}); });`;
  return new Worker(boot, { eval: true, workerData, transferList: [port] });
}

/** Root-parallel UCT: the same Player API as UctPlayer, with a `threads` option. */
export class ParallelUctPlayer<S = unknown, M = unknown> implements Player<S, M> {
  readonly name: string;
  readonly threads: number;
  private readonly local: UctPlayer<S, M>;
  private m!: GameMachine<S, M>;
  private role = 0;
  private rules?: string;
  private slots: Slot[] = [];
  /** [0]: replies posted; [1 + i]: worker i has exited */
  private signal = new Int32Array(new SharedArrayBuffer(4));
  private history: string[][] = [];
  private tracked: S | undefined;
  private requestId = 0;
  private crashNext = -1;
  private errors: WorkerCrashError[] = [];
  private info: Record<string, number> = {};
  private merged: RootStats = { moves: [], n: [], w: [], iterations: 0 };

  constructor(private readonly opts: ParallelUctOptions = {}) {
    this.threads = Math.max(1, Math.floor(opts.threads ?? 2));
    this.rules = opts.rules;
    this.local = new UctPlayer<S, M>({
      c: opts.c,
      nodeBudget: opts.nodeBudget,
      priorWeight: opts.priorWeight,
      bias: opts.weights ? (new BoardFeatures(opts.weights) as never) : undefined,
    });
    this.name = opts.name ?? `uct${opts.weights ? '+features' : ''}x${this.threads}`;
  }

  /** The rule sheet the workers load (LocalAgent and the protocol server call this before `start`). */
  setRules(kif: string): void {
    this.rules = kif;
  }

  start(machine: GameMachine<S, M>, role: number, seed = 1): void {
    this.close();
    this.m = machine;
    this.role = role;
    this.local.start(machine, role, seed);
    this.history = [];
    this.tracked = machine.initialState();
    this.errors = [];
    const n = this.threads - 1;
    this.signal = new Int32Array(new SharedArrayBuffer(4 * (1 + n)));
    if (!n || !this.rules) return;
    for (let i = 0; i < n; i++) {
      const { port1, port2 } = new MessageChannel();
      try {
        const worker = spawn(
          {
            rules: this.rules,
            // the same reasoner as ours (see uct-worker.ts for why it is not chosen again there)
            engine: KINDS.has(machine.kind) ? (machine.kind as WorkerInit['engine']) : undefined,
            role,
            seed: seed + 7919 * (i + 1),
            c: this.opts.c,
            nodeBudget: this.opts.nodeBudget,
            priorWeight: this.opts.priorWeight,
            weights: this.opts.weights,
          },
          port2,
          this.signal,
          i,
        );
        worker.unref();
        port1.unref();
        const slot: Slot = { worker, port: port1, ready: false, dead: false, busy: 0, since: 0 };
        // a worker that fails to load or throws outside a request: remembered, its slot is skipped
        worker.on('error', (e) => {
          slot.dead = true;
          this.errors.push(new WorkerCrashError(i, `failed: ${e.message}`));
        });
        this.slots.push(slot);
      } catch (e) {
        this.errors.push(e instanceof WorkerCrashError ? e : new WorkerCrashError(i, (e as Error).message));
      }
    }
    const until = performance.now() + (this.opts.readyWaitMs ?? 5000);
    for (;;) {
      const seen = Atomics.load(this.signal, 0);
      this.poll();
      const left = until - performance.now();
      if (this.slots.every((s) => s.ready || s.dead) || left <= 0) break;
      Atomics.wait(this.signal, 0, seen, Math.min(left, 50));
    }
  }

  /** Takes the workers' 'ready' notes and exits; keeps other messages for `select`. */
  private poll(): Array<{ i: number; msg: { type: string; id: number; stats?: RootStats; message?: string } }> {
    const out: Array<{ i: number; msg: { type: string; id: number; stats?: RootStats; message?: string } }> = [];
    for (const [i, slot] of this.slots.entries()) {
      for (let r = receiveMessageOnPort(slot.port); r; r = receiveMessageOnPort(slot.port)) {
        const msg = r.message as { type: string; id: number; stats?: RootStats; message?: string; kind?: string };
        if (msg.type === 'ready') {
          slot.ready = true;
          slot.kind = msg.kind;
        } else {
          if (msg.id === slot.busy) slot.busy = 0;
          out.push({ i, msg });
        }
      }
      if (!slot.dead && Atomics.load(this.signal, 1 + i)) {
        slot.dead = true;
        this.errors.push(new WorkerCrashError(i, slot.ready ? 'exited' : 'exited while loading the rules'));
      }
    }
    return out;
  }

  observe(joint: M[]): void {
    this.history.push(joint.map((x) => this.m.moveText(x)));
    if (this.tracked !== undefined) this.tracked = this.m.next(this.tracked, joint);
    this.local.observe(joint);
  }

  /** Test hook: worker `i` dies at the next search request. */
  crashWorkerAtNextSearch(i: number): void {
    this.crashNext = i;
  }

  /** Worker failures since `start` (the moves were still chosen from the searchers that answered). */
  workerErrors(): WorkerCrashError[] {
    return [...this.errors];
  }

  /** The reasoner each worker loaded (`GameMachine.kind`; undefined while loading or if it failed). */
  workerKinds(): Array<string | undefined> {
    return this.slots.map((s) => s.kind);
  }

  /** The merged root statistics of the last decision. */
  rootStats(): RootStats {
    return this.merged;
  }

  select(state: S, opts: SearchOptions): M {
    const m = this.m;
    const mine = m.isTerminal(state) ? [] : m.legal(state, this.role);
    if (!mine.length) throw new Error('no legal move');
    if (mine.length === 1) {
      this.info = { iterations: 0 };
      return mine[0]!;
    }
    const t0 = performance.now();
    // workers can only search the state we can name by its moves
    const synced = this.tracked !== undefined && m.stateKey(this.tracked) === m.stateKey(state);
    const pending = new Map<number, Slot>();
    const sent = new Map<number, number>();
    this.poll(); // stale answers of an abandoned request are dropped here
    // an iteration budget is shared among the searchers that will take part
    const idle = synced ? this.slots.filter((x) => x.ready && !x.dead && !x.busy).length : 0;
    const per = opts.maxIterations === undefined ? undefined : Math.ceil(opts.maxIterations / (1 + idle));
    if (synced) {
      for (const [i, slot] of this.slots.entries()) {
        // a worker still on an earlier request is left out; one stuck far too long is stopped
        if (slot.busy && !slot.dead && performance.now() - slot.since > HUNG_MS) {
          slot.dead = true;
          void slot.worker.terminate();
          this.errors.push(new WorkerCrashError(i, `hung (no answer for ${HUNG_MS} ms); stopped`));
        }
        if (slot.dead || !slot.ready || slot.busy) continue;
        const req: SearchRequest = {
          type: 'search',
          id: ++this.requestId,
          history: this.history,
          timeMs: opts.timeMs,
          maxIterations: per,
          crash: this.crashNext === i,
        };
        slot.port.postMessage(req);
        slot.busy = req.id;
        sent.set(i, req.id);
        slot.since = performance.now();
        pending.set(i, slot);
      }
      this.crashNext = -1;
    }
    const parts: RootStats[] = [];
    try {
      this.local.select(state, { timeMs: opts.timeMs, maxIterations: per });
      parts.push(this.local.rootStats());
    } catch {
      /* the workers' answers, or the fallback, decide */
    }
    const grace = this.opts.graceMs ?? (opts.maxIterations === undefined ? 1000 : 60_000);
    const deadline = t0 + (Number.isFinite(opts.timeMs) ? opts.timeMs : 0) + grace;
    while (pending.size) {
      const seen = Atomics.load(this.signal, 0);
      for (const { i, msg } of this.poll()) {
        if (!pending.has(i) || msg.id !== sent.get(i)) continue; // a stale answer to an abandoned request
        pending.delete(i);
        if (msg.type === 'result' && msg.stats) parts.push(msg.stats);
        else this.errors.push(new WorkerCrashError(i, `failed: ${msg.message ?? 'unknown error'}`));
      }
      for (const [i, slot] of pending) if (slot.dead) pending.delete(i); // poll() recorded the exit
      if (!pending.size) break;
      const left = deadline - performance.now();
      if (left <= 0) {
        // late, not necessarily dead: its answer is dropped when it comes, and it gets the next request
        for (const i of pending.keys())
          this.errors.push(new WorkerCrashError(i, `did not answer within ${grace} ms of the time budget`));
        break;
      }
      Atomics.wait(this.signal, 0, seen, Math.min(left, 50));
    }
    this.merged = mergeRootStats(parts);
    // the most visited of our legal moves over all searchers; the first legal move if none searched
    let best: M = mine[0]!;
    let bn = -1;
    for (const mv of mine) {
      const k = this.merged.moves.indexOf(m.moveText(mv));
      const n = k < 0 ? 0 : this.merged.n[k]!;
      if (n > bn) {
        bn = n;
        best = mv;
      }
    }
    this.info = {
      iterations: this.merged.iterations,
      searchers: parts.length,
      crashed: this.errors.length,
      ms: performance.now() - t0,
    };
    return best;
  }

  lastInfo(): Record<string, number> {
    return this.info;
  }

  /** Stops the workers (also done by the next `start`). */
  close(): Promise<void> {
    const slots = this.slots;
    this.slots = [];
    return Promise.all(slots.map((s) => s.worker.terminate())).then(() => {});
  }
}
