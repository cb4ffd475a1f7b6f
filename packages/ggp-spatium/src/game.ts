// loadGame: the state machine API of the issue: the grounded net where the sheet's ground program is small, else
// the relational compiler, with the interpreter as the last fallback.
import { CompiledMachine, compileProgram } from './compiler.js';
import { CompileError } from './errors.js';
import { parseGdl } from './gdl.js';
import { type GroundOptions, groundedFromPrepared } from './ground.js';
import { InterpreterMachine } from './interpreter.js';
import { type GameMachine, rng } from './machine.js';
import { normaliseMgdl } from './mgdl.js';
import { type LoadOptions, prepareRules } from './prepare.js';
import { withTableBudget } from './terms.js';

export interface LoadGameOptions extends LoadOptions {
  /**
   * 'auto' (default): the grounded net where grounding stays within `ground`'s budget (recursive rules unrolled
   * into layers included), else compiled, falling back to the interpreter where the compiler refuses
   */
  engine?: 'auto' | 'grounded' | 'compiled' | 'interpreter';
  /** budget of the grounded reasoner (rows visited while grounding, nodes of the net) */
  ground?: GroundOptions;
  /** 'auto': ms of random plies tried on the compiled reasoner before trusting it (default 1500) */
  probeMs?: number;
  /**
   * 'auto': ms of CPU time the compiler may spend building tables at load and in the probe (default 15000); past
   * it the sheet goes to the interpreter. With the grounder's 5 s, every sheet's reasoner is chosen within ≈ 20 s
   * of CPU time (mummymaze1p's legitimate compile takes ≈ 10 s, hence the margin).
   */
  compileMs?: number;
}

function probe(m: GameMachine, ms: number): void {
  const t0 = performance.now();
  const rand = rng(1);
  let s = m.initialState();
  for (let ply = 0; ply < 30 && performance.now() - t0 < ms; ply++) {
    if (m.isTerminal(s)) break;
    const joint = m.roles().map((_, r) => {
      const l = m.legal(s, r);
      return l[(rand() * l.length) | 0];
    });
    if (joint.some((x) => x === undefined)) break;
    s = m.next(s, joint);
  }
  m.goalValues(s, 0);
}

/**
 * Parses, validates and loads a rule sheet. Moves and fluents are canonical GDL text in the text methods
 * (`legalMoves`, `nextState`, `fluents`); handle methods (`legal`, `next`) serve players' inner loops.
 */
export function loadGame(kif: string, opts: LoadGameOptions = {}): GameMachine {
  const rules = parseGdl(kif);
  const engine = opts.engine ?? 'auto';
  if (engine === 'interpreter') {
    const g = prepareRules(rules, opts);
    return new InterpreterMachine(g.roles, g.rules) as GameMachine;
  }
  // validate the sheet as written; ground it, or compile its mGDL normal form
  const g0 = prepareRules(rules, opts);
  if (engine === 'grounded') return groundedFromPrepared(g0, opts.ground) as GameMachine;
  if (engine === 'auto') {
    try {
      return groundedFromPrepared(g0, opts.ground) as GameMachine;
    } catch {
      // a refusal (GroundingError) is expected; anything else would be a grounder bug, and the compiler can
      // still serve the sheet, so 'auto' falls back either way ('grounded' lets it surface)
    }
  }
  try {
    const norm = normaliseMgdl(rules);
    const g = prepareRules(norm.rules, { strict: false });
    const build = () =>
      new CompiledMachine(
        compileProgram({ ...g, warnings: g0.warnings, writtenArity: norm.writtenArity }),
      ) as GameMachine;
    if (engine !== 'auto') return build();
    // a short random probe: tables that outgrow their limit only show once states are evaluated
    return withTableBudget(opts.compileMs ?? 15_000, () => {
      const m = build();
      probe(m, opts.probeMs ?? 1500);
      return m;
    });
  } catch (e) {
    if (engine === 'compiled' || !(e instanceof CompileError || e instanceof RangeError)) throw e;
    return new InterpreterMachine(g0.roles, g0.rules) as GameMachine;
  }
}
