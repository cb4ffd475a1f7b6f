// @tessera/dyn-pool/node: the parts that need Node (child processes, the file system), kept out of the main entry
// so that the model, training and generation stay importable in a browser. `reproduce` is issue #9's table as a
// resumable grid of training runs (the `dyn-pool reproduce` command is a thin shell over these).

export {
  buildTable,
  childRunner,
  collectRuns,
  configLabel,
  curveMarkdown,
  DEFAULT_GRID,
  type GridOptions,
  type GridResult,
  parseGrid,
  parseRunLog,
  parseSeeds,
  ReproduceError,
  type ReproduceTable,
  type RunConfig,
  type RunRecord,
  runGrid,
  runName,
  type TableRow,
  type TrainRunner,
  tableMarkdown,
} from './reproduce.js';
