// The referee: runs a match between agents (our players in-process, or remote players by URL speaking the GGP
// protocol), checks every move against its own reasoner, substitutes a random legal move for an illegal,
// missing or late one, and returns a match record.
import { loadGame } from './game.js';
import { type GameMachine, goalsOf, rng } from './machine.js';
import type { Player } from './players.js';
import { type Gdl2Info, play2Message, playMessage, startMessage, stop2Message, stopMessage } from './protocol.js';

export interface Agent {
  readonly name: string;
  start(rules: string, role: string, startclock: number, playclock: number, matchId: string): Promise<void>;
  /** the agent's move given the previous joint move (null at the first ply); in GDL-II games also what the
   * role may know: the turn, its own last move and its percepts (a remote player is sent only those) */
  play(lastMoves: string[] | null, gdl2?: Gdl2Info): Promise<string>;
  stop(lastMoves: string[] | null, gdl2?: Gdl2Info): Promise<void>;
}

/** Wraps an in-process player; it keeps its own reasoner and state, as a remote player would. */
export class LocalAgent implements Agent {
  private m!: GameMachine;
  private s: unknown;
  private role = 0;
  private playclock = 1;
  constructor(
    readonly player: Player,
    private readonly seed = 1,
    /** ms kept from the playclock for overhead */
    private readonly marginMs = 50,
    /** a fixed search budget instead of the clock: reproducible play */
    private readonly maxIterations?: number,
    /** a reasoner already loaded for these rules (duels give both sides the same one, so neither gets a
     * faster engine by a different load-time choice) */
    private readonly machine?: GameMachine,
  ) {}
  get name(): string {
    return this.player.name;
  }
  async start(rules: string, role: string, _sc: number, playclock: number): Promise<void> {
    this.m = this.machine ?? loadGame(rules);
    this.role = this.m.roles().indexOf(role);
    this.s = this.m.initialState();
    this.playclock = playclock;
    // players that search in worker threads load the rules there
    (this.player as { setRules?: (kif: string) => void }).setRules?.(rules);
    this.player.start(this.m, this.role, this.seed);
  }
  async play(last: string[] | null): Promise<string> {
    if (last) {
      const joint = last.map((t) => this.m.parseMove(t)!);
      // a GDL-II player is told only its own move and what it sees, as the GDL-II protocol would tell it
      const p2 = this.player as { perceive?: (mv: unknown, percepts: string[]) => void };
      if (p2.perceive) p2.perceive(joint[this.role], this.m.percepts(this.s, joint, this.m.roles()[this.role]!));
      this.s = this.m.next(this.s, joint);
      (this.player as { observe?: (j: unknown[]) => void }).observe?.(joint);
    }
    const mv = this.maxIterations
      ? this.player.select(this.s, { timeMs: Number.POSITIVE_INFINITY, maxIterations: this.maxIterations })
      : this.player.select(this.s, { timeMs: Math.max(1, this.playclock * 1000 - this.marginMs) });
    return this.m.moveText(mv);
  }
  async stop(): Promise<void> {
    await (this.player as { close?: () => Promise<void> }).close?.();
  }
}

/** A remote GGP player reached over HTTP. */
export class RemoteAgent implements Agent {
  private id = '';
  private playclock = 10;
  constructor(readonly url: string) {}
  get name(): string {
    return this.url;
  }
  private async post(body: string, timeoutMs: number): Promise<string> {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: { 'Content-Type': 'text/acl' },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    return (await res.text()).trim();
  }
  async start(rules: string, role: string, sc: number, pc: number, matchId: string): Promise<void> {
    this.id = matchId;
    this.playclock = pc;
    await this.post(startMessage(matchId, role, rules, sc, pc), sc * 1000 + 2000);
  }
  async play(last: string[] | null, gdl2?: Gdl2Info): Promise<string> {
    const msg = gdl2 ? play2Message(this.id, gdl2.turn, gdl2.lastMove, gdl2.percepts) : playMessage(this.id, last);
    return this.post(msg, this.playclock * 1000 + 2000);
  }
  async stop(last: string[] | null, gdl2?: Gdl2Info): Promise<void> {
    const msg = gdl2 ? stop2Message(this.id, gdl2.turn, gdl2.lastMove, gdl2.percepts) : stopMessage(this.id, last);
    await this.post(msg, 5000).catch(() => {});
  }
}

export interface MatchRecord {
  matchId: string;
  game: string;
  roles: string[];
  players: string[];
  startclock: number;
  playclock: number;
  seed: number;
  /** joint moves per ply, in role order */
  moves: string[][];
  /** final goal per role (null: undefined by the sheet) */
  goals: Array<number | null>;
  /** illegal, late or failed moves that the referee replaced */
  errors: string[];
  /** ms each role took per ply */
  times: number[][];
  plies: number;
}

export interface MatchOptions {
  game?: string;
  startclock?: number;
  playclock?: number;
  seed?: number;
  maxPlies?: number;
  matchId?: string;
  /** false: load the rules leniently, as the protocol server does (spec violations become warnings); default true */
  strict?: boolean;
  /** called after each ply with the plies played so far (progress, and the tune pool's sign of life) */
  onPly?: (plies: number) => void;
}

export async function playMatch(kif: string, agents: Agent[], opts: MatchOptions = {}): Promise<MatchRecord> {
  const { startclock = 10, playclock = 1, seed = 1, maxPlies = 1000, game = 'game' } = opts;
  const matchId = opts.matchId ?? `m${Date.now().toString(36)}${seed}`;
  const m = loadGame(kif, { strict: opts.strict });
  const roles = m.roles();
  if (agents.length !== roles.length)
    throw new Error(`the game has ${roles.length} roles, got ${agents.length} agents`);
  const rand = rng(seed);
  const rec: MatchRecord = {
    matchId,
    game,
    roles,
    players: agents.map((a) => a.name),
    startclock,
    playclock,
    seed,
    moves: [],
    goals: [],
    errors: [],
    times: [],
    plies: 0,
  };
  await Promise.all(
    agents.map((a, i) =>
      a.start(kif, roles[i]!, startclock, playclock, matchId).catch((e: Error) => {
        rec.errors.push(`start ${roles[i]}: ${e.message}`);
      }),
    ),
  );
  let s = m.initialState();
  let last: string[] | null = null;
  // GDL-II (sheets with `sees` or a `random` role): each role is told its own move and percepts, never the others'
  const gdl2 = /\(\s*sees\s/i.test(kif) || roles.includes('random');
  let infos: Gdl2Info[] | undefined = gdl2 ? roles.map(() => ({ turn: 0, lastMove: null, percepts: [] })) : undefined;
  while (!m.isTerminal(s) && rec.plies < maxPlies) {
    const legal = roles.map((r) => m.legalMoves(s, r));
    if (legal.some((l) => !l.length)) break;
    const times: number[] = [];
    // in-process agents share one thread: ask them in turn so each gets its whole playclock
    const joint: string[] = [];
    for (let i = 0; i < agents.length; i++) {
      const t0 = performance.now();
      let mv: string | undefined;
      try {
        mv = (await agents[i]!.play(last, infos?.[i])).toLowerCase().replace(/\s+/g, ' ');
      } catch (e) {
        rec.errors.push(`ply ${rec.plies} ${roles[i]}: ${(e as Error).message}`);
      }
      const dt = performance.now() - t0;
      times.push(dt);
      if (dt > playclock * 1000 + 1000) rec.errors.push(`ply ${rec.plies} ${roles[i]}: late (${dt.toFixed(0)} ms)`);
      const canon = mv === undefined ? undefined : m.parseMove(mv);
      const text = canon === undefined ? undefined : m.moveText(canon);
      if (text === undefined || !legal[i]!.includes(text)) {
        const sub = legal[i]![(rand() * legal[i]!.length) | 0]!;
        rec.errors.push(`ply ${rec.plies} ${roles[i]}: illegal move ${mv ?? '(none)'}; played ${sub}`);
        joint.push(sub);
      } else joint.push(text);
    }
    if (gdl2)
      infos = roles.map((r, i) => ({ turn: rec.plies + 1, lastMove: joint[i]!, percepts: m.percepts(s, joint, r) }));
    s = m.nextState(s, joint);
    rec.moves.push(joint);
    rec.times.push(times);
    rec.plies++;
    last = joint;
    opts.onPly?.(rec.plies);
  }
  rec.goals = goalsOf(m, s);
  await Promise.all(agents.map((a, i) => a.stop(last, infos?.[i])));
  return rec;
}
