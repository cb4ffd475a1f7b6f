export { CompiledMachine, type CompiledProgram, compileProgram, loadCompiled } from './compiler.js';
export {
  type ConformanceOptions,
  type ConformanceResult,
  checkConformance,
  conformSheet,
  type SheetReport,
} from './conformance.js';
export * from './errors.js';
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
export { InterpreterMachine, loadInterpreter, Prover } from './interpreter.js';
export { parseKif, printSExpr, type SExpr } from './kif.js';
export { type GameMachine, goalsOf, randomPlayout, rng } from './machine.js';
export { checkMgdl, type NormaliseResult, normaliseMgdl } from './mgdl.js';
export { type LoadOptions, type PreparedGame, prepareGame, prepareRules } from './prepare.js';
export { deOr, type ValidationReport, validateRules } from './validate.js';
