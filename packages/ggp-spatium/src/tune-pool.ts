// Fitness games of an SGA generation spread over child processes (`tune`'s `jobs`): one process per job, each
// loading the sheet once on the parent's reasoner and playing one game at a time, so a CPU-time playclock stays
// one game's own time. Processes rather than worker threads because Node 20 can read only the whole process's CPU
// time, which worker threads would share.
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

interface Job {
  proc: ChildProcess;
  /** the last 2,000 characters of its stderr, for the error */
  err: string;
  ready: Promise<void>;
}

/** What the run in progress does with a child's answers and exits. */
interface Run {
  line(j: number, msg: { id?: number; score?: number; error?: string }): void;
  exit(j: number, why: string): void;
}

export class TunePool {
  private readonly jobs: Job[] = [];
  private run_: Run | null = null;
  private closed = false;

  constructor(kif: string, jobs: number, engine: string, strict?: boolean) {
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
      };
      job.ready.catch(() => {}); // observed in run(); never an unhandled rejection before that
      proc.stderr!.on('data', (d) => {
        job.err = (job.err + d).slice(-2000);
      });
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        let msg: { ready?: boolean; id?: number; score?: number; error?: string };
        try {
          msg = JSON.parse(line);
        } catch {
          msg = { error: `unreadable answer: ${line.slice(0, 200)}` };
        }
        if (msg.ready) loaded();
        else this.run_?.line(j, msg);
      });
      proc.on('exit', (code, signal) => {
        const why = `tune job ${j} exited (${code ?? signal}): ${job.err.trim() || 'no message'}`;
        refused(new TuneJobError(why));
        if (!this.closed) this.run_?.exit(j, why);
      });
      proc.stdin!.on('error', () => {}); // a write to a child that died: its exit reports it
      proc.stdin!.write(`${JSON.stringify({ kif, engine, strict })}\n`);
      this.jobs.push(job);
    }
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
        if (next >= games.length) return;
        const k = next++;
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
    for (const x of this.jobs) x.proc.kill();
  }
}
