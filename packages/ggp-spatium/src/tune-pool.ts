// Fitness games of an SGA generation spread over child processes (`tune`'s `jobs`): one process per job, each
// loading the sheet once on the parent's reasoner and playing one game at a time, so a CPU-time playclock stays
// one game's own time. Processes rather than worker threads because Node 20 can read only the whole process's CPU
// time, which worker threads would share. A watchdog stops a child that loads or plays a ply for longer than its
// limits allow (a hung reasoner, a stopped process), so a run fails with a TuneJobError instead of waiting forever;
// the checkpoint keeps every finished evaluation for a resume.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { childArgs } from './child.js';
import { GgpError } from './errors.js';
import type { GameTask, Genome } from './tune.js';

/** A tune child process failed (crashed, could not load the sheet, or a game threw). */
export class TuneJobError extends GgpError {}

export interface PoolGame {
  genome: Genome;
  task: GameTask;
}

export interface TunePoolOptions {
  /** ms a child may take to load the sheet (default 600,000: grounding a large sheet without a budget) */
  loadMs?: number;
  /** ms a child may go without finishing a ply of its game (default 300,000: a move of any sane clock or
   * iteration budget, even on a loaded machine) */
  stallMs?: number;
}

interface Job {
  proc: ChildProcess;
  /** the last 2,000 characters of its stderr, for the error */
  err: string;
  ready: Promise<void>;
  /** the watchdog: armed while the child loads or holds a game, re-armed by each of its answers */
  timer: ReturnType<typeof setTimeout> | null;
  /** what it is doing, for the watchdog's message */
  doing: string;
  /** the watchdog's message once it has stopped the child */
  hung: string | null;
}

/** What the run in progress does with a child's answers and exits. */
interface Run {
  line(j: number, msg: { id?: number; score?: number; error?: string }): void;
  exit(j: number, why: string): void;
}

const LIMIT_MAX = 2 ** 31 - 1; // setTimeout's own limit (≈ 24.8 days)

export class TunePool {
  private readonly jobs: Job[] = [];
  private run_: Run | null = null;
  private closed = false;

  private readonly stallMs: number;

  constructor(kif: string, jobs: number, engine: string, strict?: boolean, opts: TunePoolOptions = {}) {
    const { loadMs = 600_000, stallMs = 300_000 } = opts;
    for (const [name, v] of [
      ['loadMs', loadMs],
      ['stallMs', stallMs],
    ] as const)
      if (!(v > 0)) throw new RangeError(`${name} must be > 0`);
    this.stallMs = Math.min(stallMs, LIMIT_MAX);
    for (let j = 0; j < jobs; j++) {
      const proc = spawn(process.execPath, childArgs('tune-child'), { stdio: ['pipe', 'pipe', 'pipe'] });
      let loaded!: () => void;
      let refused!: (e: Error) => void;
      const job: Job = {
        proc,
        err: '',
        ready: new Promise<void>((res, rej) => {
          loaded = res;
          refused = rej;
        }),
        timer: null,
        doing: 'loading the sheet',
        hung: null,
      };
      job.ready.catch(() => {}); // observed in run(); never an unhandled rejection before that
      proc.stderr!.on('data', (d) => {
        job.err = (job.err + d).slice(-2000);
      });
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        let msg: { ready?: boolean; id?: number; ply?: number; score?: number; error?: string };
        try {
          msg = JSON.parse(line);
        } catch {
          msg = { error: `unreadable answer: ${line.slice(0, 200)}` };
        }
        if (msg.ready) {
          this.watch(j, null);
          loaded();
        } else if (typeof msg.ply === 'number') {
          job.doing = `in game ${msg.id} after ply ${msg.ply}`;
          this.watch(j, this.stallMs);
        } else {
          this.watch(j, null); // a game's answer: idle until given the next
          this.run_?.line(j, msg);
        }
      });
      proc.on('exit', (code, signal) => {
        this.watch(j, null);
        const why = job.hung ?? `tune job ${j} exited (${code ?? signal}): ${job.err.trim() || 'no message'}`;
        refused(new TuneJobError(why));
        if (!this.closed) this.run_?.exit(j, why);
      });
      proc.stdin!.on('error', () => {}); // a write to a child that died: its exit reports it
      proc.stdin!.write(`${JSON.stringify({ kif, engine, strict })}\n`);
      this.jobs.push(job);
      this.watch(j, Math.min(loadMs, LIMIT_MAX));
    }
  }

  /** (Re)arms job j's watchdog for `ms`, or disarms it (null). When it fires the child is stopped as hung. */
  private watch(j: number, ms: number | null): void {
    const job = this.jobs[j]!;
    if (job.timer) clearTimeout(job.timer);
    job.timer = null;
    if (ms === null || this.closed) return;
    job.timer = setTimeout(() => {
      job.timer = null;
      const tail = job.err.trim().slice(-500);
      job.hung = `tune job ${j}: no answer for ${ms / 1000} s ${job.doing}; stopped as hung${tail ? ` (stderr: ${tail})` : ''}`;
      // its exit handler rejects `ready` and fails the run in progress with this message
      job.proc.kill('SIGKILL');
    }, ms);
    job.timer.unref?.();
  }

  /**
   * Plays every game, each child taking the next as it finishes one; `onScore(k, score)` is called as game k
   * finishes (an exception thrown there stops the pool and rejects). Resolves with the scores in task order.
   */
  async run(games: PoolGame[], onScore: (k: number, score: number) => void = () => {}): Promise<number[]> {
    if (this.closed) throw new TuneJobError('the tune pool is closed');
    await Promise.all(this.jobs.map((x) => x.ready));
    const scores: number[] = new Array(games.length);
    let next = 0;
    let done = 0;
    return new Promise<number[]>((resolve, reject) => {
      const fail = (e: Error) => {
        this.close();
        reject(e);
      };
      const give = (j: number) => {
        if (next >= games.length) return this.watch(j, null);
        const k = next++;
        this.jobs[j]!.doing = `in game ${k} before its first ply`;
        this.watch(j, this.stallMs);
        this.jobs[j]!.proc.stdin!.write(`${JSON.stringify({ id: k, ...games[k] })}\n`);
      };
      this.run_ = {
        line: (j, msg) => {
          if (msg.error !== undefined || msg.score === undefined || msg.id === undefined)
            return fail(new TuneJobError(`tune job ${j}, game ${msg.id ?? '?'}: ${msg.error ?? 'no score'}`));
          scores[msg.id] = msg.score;
          done++;
          try {
            onScore(msg.id, msg.score);
          } catch (e) {
            return fail(e as Error);
          }
          if (done === games.length) {
            this.run_ = null;
            return resolve(scores);
          }
          give(j);
        },
        exit: (_j, why) => fail(new TuneJobError(why)),
      };
      if (!games.length) {
        this.run_ = null;
        return resolve(scores);
      }
      for (let j = 0; j < this.jobs.length; j++) give(j);
    });
  }

  /** Stops the child processes (a run in progress is abandoned). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.run_ = null;
    for (let j = 0; j < this.jobs.length; j++) {
      this.watch(j, null);
      this.jobs[j]!.proc.kill();
    }
  }
}
