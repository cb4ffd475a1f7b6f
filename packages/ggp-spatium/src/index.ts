export { CompiledMachine, type CompiledProgram, compileProgram, loadCompiled } from './compiler.js';
export {
  type ConformanceOptions,
  type ConformanceResult,
  checkConformance,
  conformanceSweep,
  conformSheet,
  type SheetReport,
  type SweepOptions,
  type SweepSummary,
  sweepSummary,
} from './conformance.js';
export * from './errors.js';
export { type DuelOptions, type DuelResult, duel, duelTable, wilson } from './experiment.js';
export {
  type Board,
  BoardFeatures,
  boardFromSheet,
  DEFAULT_WEIGHTS,
  detectBoard,
  FEATURES,
  type FeatureOptions,
  ownerOf,
} from './features.js';
export { type LoadGameOptions, loadGame } from './game.js';
export {
  type Atom,
  atomText,
  type Literal,
  parseGdl,
  parseTerm,
  type Rule,
  rulesText,
  ruleText,
  type Term,
  termText,
} from './gdl.js';
export { type BeliefOptions, BeliefState, type GdlIIOptions, GdlIIPlayer } from './gdl2.js';
export { GroundingError, GroundMachine, type GroundOptions, type GState, loadGrounded } from './ground.js';
export { InterpreterMachine, loadInterpreter, Prover } from './interpreter.js';
export { parseKif, printSExpr, type SExpr } from './kif.js';
export { type GameMachine, goalsOf, randomPlayout, rng } from './machine.js';
export { type Agent, LocalAgent, type MatchOptions, type MatchRecord, playMatch, RemoteAgent } from './match.js';
export { checkMgdl, type NormaliseResult, normaliseMgdl } from './mgdl.js';
export { mergeRootStats, type ParallelUctOptions, ParallelUctPlayer, WorkerCrashError } from './parallel.js';
export {
  MonteCarloPlayer,
  type MoveBias,
  type Player,
  playout,
  RandomPlayer,
  type RootStats,
  type SearchOptions,
  type UctOptions,
  UctPlayer,
} from './players.js';
export { type LoadOptions, type PreparedGame, prepareGame, prepareRules } from './prepare.js';
export {
  type Gdl2Info,
  type Message,
  parseMessage,
  play2Message,
  playMessage,
  startMessage,
  stopMessage,
} from './protocol.js';
export { createPlayerServer, type PlayerServer, type ServerOptions } from './server.js';
export {
  bestOf,
  decode,
  encode,
  evaluate,
  type Genome,
  genomePlayer,
  type Tally,
  type TuneOptions,
  type TuneResult,
  tune,
} from './tune.js';
export { TuneJobError } from './tune-pool.js';
export { deOr, type ValidationReport, validateRules } from './validate.js';
