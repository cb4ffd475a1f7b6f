// dyn-pool: train, evaluate and sample hourglass character LMs with dynamic token pooling (Nawrot et al.,
// ACL 2023, arXiv 2211.09761) on any UTF-8 text file.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getBackend, manualSeed, setBackend } from '@tessera/tensor-core';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BOUNDARY_SOURCES, type BoundarySource, HourglassLM } from './model.js';
import {
  buildTable,
  checkRecipe,
  childRunner,
  collectRuns,
  curveMarkdown,
  DEFAULT_GRID,
  type GridResult,
  parseGrid,
  parseSeeds,
  ReproduceError,
  type RunConfig,
  recipeNotes,
  runGrid,
  type TrainRunner,
  tableMarkdown,
} from './reproduce.js';
import {
  type Corpus,
  checkEvaluable,
  DEFAULT_LR,
  type EvalOptions,
  evaluate,
  evaluateAsync,
  type GenerateOptions,
  generate,
  generateAsync,
  loadTrainedAsync,
  prepareCorpus,
  readCheckpointConfig,
  type SavedConfig,
  train,
} from './train.js';
import { decodeUtf8, TextInputError } from './vocab.js';

const int =
  (name: string, min = 1) =>
  (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}; got '${v}'`);
    return n;
  };
/** A finite number, optionally within bounds: `gt`/`lt` exclusive, `ge` inclusive. */
const num =
  (name: string, r: { gt?: number; ge?: number; lt?: number } = {}) =>
  (v: string) => {
    const n = Number(v);
    const lo = r.gt !== undefined ? `(${r.gt}` : r.ge !== undefined ? `[${r.ge}` : null;
    const within =
      (r.gt === undefined || n > r.gt) && (r.ge === undefined || n >= r.ge) && (r.lt === undefined || n < r.lt);
    if (!Number.isFinite(n) || !within)
      throw new InvalidArgumentError(
        `${name} must be a number${lo ? (r.lt !== undefined ? ` in ${lo}, ${r.lt})` : ` ${r.gt !== undefined ? '>' : '≥'} ${r.gt ?? r.ge}`) : ''}; got '${v}'`,
      );
    return n;
  };
const layers = (v: string): [number, number, number] => {
  const p = v.split(',').map(Number);
  if (p.length !== 3 || p.some((n) => !Number.isInteger(n) || n < 0))
    throw new InvalidArgumentError(`layers must be three comma-separated counts pre,short,post; got '${v}'`);
  return p as [number, number, number];
};
const source = (v: string): BoundarySource => {
  if (!(BOUNDARY_SOURCES as readonly string[]).includes(v))
    throw new InvalidArgumentError(`boundary must be one of ${BOUNDARY_SOURCES.join(', ')}; got '${v}'`);
  return v as BoundarySource;
};

const BACKENDS = ['cpu', 'webgpu'] as const;
const backendOption = (v: string): (typeof BACKENDS)[number] => {
  if (!(BACKENDS as readonly string[]).includes(v))
    throw new InvalidArgumentError(`backend must be one of ${BACKENDS.join(', ')}; got '${v}'`);
  return v as (typeof BACKENDS)[number];
};
const BACKEND_HELP = "tensor-core backend: 'cpu' (default) or 'webgpu'";

// The CPU keeps the synchronous paths; other backends read back with await (same results).
const evaluateOn = (model: HourglassLM, corpus: Pick<Corpus, 'valid'>, o: EvalOptions) =>
  getBackend() === 'cpu' ? Promise.resolve(evaluate(model, corpus, o)) : evaluateAsync(model, corpus, o);
const generateOn = (model: HourglassLM, prompt: Int32Array, o: GenerateOptions) =>
  getBackend() === 'cpu' ? Promise.resolve(generate(model, prompt, o)) : generateAsync(model, prompt, o);

async function readText(path: string): Promise<string> {
  if (!existsSync(path)) throw new TextInputError(`${path}: no such file`);
  return decodeUtf8(new Uint8Array(await readFile(path)), path);
}

const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

const choice =
  <T extends string>(name: string, values: readonly T[]) =>
  (v: string): T => {
    if (!(values as readonly string[]).includes(v))
      throw new InvalidArgumentError(`${name} must be ${values.map((x) => `'${x}'`).join(' or ')}; got '${v}'`);
    return v as T;
  };

/**
 * The recipe: the options every run of a `reproduce` grid shares, and `train` takes too. Each knows how to
 * write its value back as a flag, so `reproduce` hands its runs the whole resolved recipe.
 */
function recipeOptions(): { option: Option; flag: (v: unknown) => string }[] {
  const o = (flags: string, help: string, parse: (v: string) => unknown, dflt?: unknown) => {
    const option = new Option(flags, help).argParser(parse);
    if (dflt !== undefined) option.default(dflt);
    return { option, flag: (v: unknown) => String(v) };
  };
  return [
    {
      ...o('--layers <pre,short,post>', 'blocks before, inside and after the shortening', layers, [1, 2, 1]),
      flag: (v) => (v as number[]).join(','),
    },
    o('--d-model <n>', 'width', int('d-model'), 128),
    o('--heads <n>', 'attention heads', int('heads'), 4),
    o('--d-ff <n>', 'feed-forward width (default 4 × d-model)', int('d-ff')),
    o('--seq-len <n>', 'training window (the longest sequence the model accepts)', int('seq-len'), 256),
    o('--batch <n>', 'batch size', int('batch'), 8),
    o('--steps <n>', 'optimizer steps', int('steps'), 1000),
    o('--lr <x>', 'peak learning rate', num('lr', { gt: 0 }), DEFAULT_LR),
    o('--warmup <n>', 'linear warm-up steps (default: 10 % of --steps, at most 100)', int('warmup', 0)),
    o('--clip <x>', 'gradient-norm clip', num('clip', { gt: 0 }), 0.25),
    o('--dropout <x>', 'dropout', num('dropout', { ge: 0, lt: 1 }), 0),
    o('--ln <where>', "LayerNorm placement: 'post' (the paper; default) or 'pre'", choice('ln', ['pre', 'post'])),
    o(
      '--init <kind>',
      "linear layers: 'normal' N(0, 0.02²) as the reference code, or 'torch' (PyTorch-style uniform; default)",
      choice('init', ['normal', 'torch']),
    ),
    o(
      '--positions <kind>',
      "'rotary' (RoPE; default) or 'relative' (Transformer-XL relative attention, as the reference code)",
      choice('positions', ['rotary', 'relative']),
    ),
    o('--valid-fraction <x>', 'held-out fraction of the text', num('valid-fraction', { gt: 0, lt: 1 }), 0.05),
    o('--eval-every <n>', 'validation BPC every n steps', int('eval-every')),
    o('--eval-tokens <n>', 'at most this many validation tokens', int('eval-tokens'), 16384),
    o(
      '--eval-stride <n>',
      'score windows every n characters, only their last n (default: --seq-len)',
      int('eval-stride'),
    ),
    o('--checkpoint-every <n>', 'checkpoint every n steps', int('checkpoint-every'), 100),
    o('--backend <name>', BACKEND_HELP, backendOption, 'cpu'),
  ];
}

function withRecipe(cmd: Command): Command {
  for (const { option } of recipeOptions()) cmd.addOption(option);
  return cmd;
}

/** The recipe's resolved values as train flags (options left unset, with no default, are left out). */
function recipeFlags(o: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const { option, flag } of recipeOptions()) {
    const v = o[option.attributeName()];
    if (v !== undefined) out.push(option.long!, flag(v));
  }
  return out;
}

/**
 * Options given on the command line that contradict the checkpoint being resumed (it fixes the model and the
 * schedule; only a larger --steps changes anything: it stretches the schedule). Options left to their defaults
 * are not compared.
 */
function resumeConflicts(cmd: Command, o: Record<string, unknown>, cfg: SavedConfig, savedSteps: number): string[] {
  const m = cfg.model;
  const t = cfg.train;
  const saved: Record<string, unknown> = {
    layers: m.layers,
    dModel: m.dModel,
    heads: m.nHeads,
    dFf: m.dFF ?? 4 * m.dModel,
    seqLen: t.seqLen,
    batch: t.batchSize,
    lr: t.lr,
    warmup: t.warmup,
    clip: t.clip,
    dropout: m.dropout ?? 0,
    ln: m.ln,
    init: m.init,
    positions: m.positions,
    boundary: m.boundary,
    sf: m.fixedK,
    alpha: m.priorAlpha,
  };
  const flag = (key: string) => cmd.options.find((x) => x.attributeName() === key)?.long ?? key;
  const show = (v: unknown) => (Array.isArray(v) ? v.join(',') : String(v));
  const out: string[] = [];
  for (const [key, value] of Object.entries(saved))
    if (value !== undefined && cmd.getOptionValueSource(key) === 'cli' && show(o[key]) !== show(value))
      out.push(`${flag(key)} ${show(o[key])} (the checkpoint has ${show(value)})`);
  if (cmd.getOptionValueSource('steps') === 'cli' && (o.steps as number) < savedSteps)
    out.push(`--steps ${o.steps} (the checkpoint's run is ${savedSteps} steps; only a larger --steps is allowed)`);
  return out;
}

export function makeProgram(
  out: (line: string) => void = console.log,
  opts: { exitOverride?: boolean; runner?: TrainRunner; write?: (chunk: string) => void } = {},
): Command {
  const program = new Command('dyn-pool')
    .description('Hourglass character-level LMs with dynamic token pooling (Nawrot et al., ACL 2023)')
    .showHelpAfterError();
  // Throw instead of exiting (tests); set before the subcommands so that they inherit it.
  if (opts.exitOverride) program.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });

  withRecipe(
    program
      .command('train')
      .description('train on a UTF-8 text file (the last --valid-fraction is held out for BPC)')
      .argument('<text>', 'UTF-8 text file')
      .requiredOption('-o, --checkpoint <path>', 'checkpoint file (written atomically; --resume continues it)')
      .option('-b, --boundary <source>', `boundary source: ${BOUNDARY_SOURCES.join(' | ')}`, source, 'whitespace'),
  )
    .option('--sf <k>', 'fixed pooling: shortening factor', int('sf'), 3)
    .option('--alpha <x>', 'Gumbel: prior boundary rate α (SF ≈ 1/α)', num('alpha', { gt: 0, lt: 1 }), 0.2)
    .option('--unigram-vocab <n>', 'unigram: tokenizer vocabulary size', int('unigram-vocab'), 1000)
    .option('--valid <file>', 'held-out UTF-8 text (default: the last --valid-fraction of <text>)')
    .option('--resume', 'continue the run saved in --checkpoint (a larger --steps stretches its schedule)')
    .option('--stop-at <step>', 'save and stop at this step (to train in pieces; --resume continues)', int('stop-at'))
    .option('--seed <n>', 'random seed', int('seed', 0), 0)
    .option('--no-progress', 'no progress line')
    .option('--json', 'print the final statistics as JSON')
    .action(async (file: string, o, cmd: Command) => {
      const text = await readText(file);
      const validText = o.valid ? await readText(o.valid) : undefined;
      await setBackend(o.backend);
      manualSeed(o.seed);
      let model: HourglassLM;
      let resume: Parameters<typeof train>[3];
      let corpus: ReturnType<typeof prepareCorpus>;
      if (o.resume && !existsSync(o.checkpoint)) out(`no checkpoint at ${o.checkpoint} yet: starting a new run`);
      if (o.resume && existsSync(o.checkpoint)) {
        const bytes = new Uint8Array(await readFile(o.checkpoint));
        const savedSteps = readCheckpointConfig(bytes).train.steps; // before a larger --steps stretches it
        // Only a --steps given here stretches the run; the option's default (1000) is not a request to.
        const t = await loadTrainedAsync(bytes, {
          steps: cmd.getOptionValueSource('steps') === 'cli' ? o.steps : undefined,
        });
        const conflicts = resumeConflicts(cmd, o, t.config, savedSteps);
        if (conflicts.length)
          throw new InvalidArgumentError(
            `--resume continues ${o.checkpoint} as it was started; these options say otherwise: ${conflicts.join('; ')}. Leave them out, or start a new run with another -o`,
          );
        if (o.stopAt !== undefined && o.stopAt < t.step)
          throw new InvalidArgumentError(`--stop-at ${o.stopAt}: ${o.checkpoint} is already at step ${t.step}`);
        model = t.model;
        resume = { step: t.step, opt: t.opt, sched: t.sched, config: t.config };
        corpus = prepareCorpus(text, {
          validFraction: o.validFraction,
          source: t.config.model.boundary,
          vocab: t.vocab,
          tokenizer: t.tokenizer,
          validText,
        });
        // The vocabulary was built from the run's training text, so any character it lacks means another text
        // (checkpoints from before the corpus fingerprint are caught here; newer ones by `train` as well).
        if (corpus.unknownInTrain)
          throw new TextInputError(
            `${file}: ${corpus.unknownInTrain} training characters are outside ${o.checkpoint}'s vocabulary — not the text this run trained on; start a new run with another -o`,
          );
        const tc = t.config.train;
        Object.assign(o, {
          steps: tc.steps,
          seqLen: tc.seqLen,
          batch: tc.batchSize,
          lr: tc.lr,
          warmup: tc.warmup,
          clip: tc.clip,
        });
        out(`resuming ${o.checkpoint} at step ${t.step} of ${o.steps}`);
      } else {
        corpus = prepareCorpus(text, {
          validFraction: o.validFraction,
          source: o.boundary,
          unigramVocab: o.unigramVocab,
          validText,
        });
        model = new HourglassLM({
          vocabSize: corpus.vocab.size,
          dModel: o.dModel,
          nHeads: o.heads,
          dFF: o.dFf,
          layers: o.layers,
          boundary: o.boundary,
          maxSeqLen: o.seqLen,
          dropout: o.dropout,
          ln: o.ln,
          init: o.init,
          positions: o.positions,
          fixedK: o.sf,
          spaceIds: corpus.vocab.spaceIds(),
          priorAlpha: o.alpha,
        });
      }
      out(
        `${model.config.boundary}: ${model.numParameters()} parameters, vocabulary ${corpus.vocab.size}, ${corpus.train.length} training / ${corpus.valid.length} validation characters`,
      );
      // The final evaluation's requirements, checked now rather than after the training they would waste.
      try {
        checkEvaluable(corpus.valid.length, o.seqLen, o.evalStride);
      } catch (e) {
        throw new InvalidArgumentError(
          `${(e as Error).message.replace(/^evaluate: /, '')} (--seq-len ${o.seqLen}${o.evalStride ? `, --eval-stride ${o.evalStride}` : ''}); use a longer text, a larger --valid-fraction or --valid <file>`,
        );
      }
      if (corpus.unknownInValid)
        out(
          `note: ${corpus.unknownInValid} validation characters are outside the vocabulary (scored as the unknown symbol)`,
        );
      const stats = await train(
        model,
        corpus,
        {
          steps: o.steps,
          stopAt: o.stopAt,
          batchSize: o.batch,
          seqLen: o.seqLen,
          lr: o.lr,
          warmup: o.warmup,
          clip: o.clip,
          checkpoint: o.checkpoint,
          checkpointEvery: o.checkpointEvery,
          evalEvery: o.evalEvery,
          evalTokens: o.evalTokens,
          progress: o.progress,
          log: out,
        },
        resume,
      );
      const ev = await evaluateOn(model, corpus, { seqLen: o.seqLen, maxTokens: o.evalTokens, stride: o.evalStride });
      const summary = {
        boundary: model.config.boundary,
        steps: stats.step,
        trainBpc: stats.trainBpc,
        validBpc: ev.bpc,
        shorteningFactor: ev.shorteningFactor,
        trainTokensPerSecond: stats.tokensPerSecond,
        trainTokensPerCpuSecond: stats.tokensPerCpuSecond,
        evalTokensPerSecond: ev.tokensPerSecond,
        evalTokensPerCpuSecond: ev.tokensPerCpuSecond,
        trainSeconds: stats.seconds,
        peakRssBytes: stats.peakRssBytes,
        peakTensorBytes: stats.peakTensorBytes,
        checkpoint: o.checkpoint,
      };
      if (o.json) out(JSON.stringify(summary));
      else
        out(
          `valid ${ev.bpc.toFixed(4)} bpc (${Number.isFinite(stats.trainBpc) ? `train ${stats.trainBpc.toFixed(4)}` : 'no steps trained'}), SF ${ev.shorteningFactor.toFixed(2)}, ` +
            `${stats.tokensPerSecond.toFixed(0)} train tok/s, ${ev.tokensPerSecond.toFixed(0)} eval tok/s, ` +
            `peak RSS ${mb(stats.peakRssBytes)}, peak tensors ${mb(stats.peakTensorBytes)}`,
        );
    });

  program
    .command('eval')
    .description('bits per character of a checkpoint on a UTF-8 text file')
    .argument('<checkpoint>', 'checkpoint written by train')
    .argument('<text>', 'UTF-8 text file')
    .option('--strict', 'characters outside the vocabulary are an error (default: the unknown symbol)')
    .option(
      '--max-tokens <n>',
      'stop after the window that reaches this many scored characters (whole windows: the first scores --seq-len, each later one its stride)',
      int('max-tokens'),
    )
    .option('--stride <n>', 'windows every n characters, scoring their last n (paper: 512 of 2048)', int('stride'))
    .option('--by-word-position', "also split the BPC by the scored character's position after the last whitespace")
    .option('--backend <name>', BACKEND_HELP, backendOption, 'cpu')
    .option('--json', 'print JSON')
    .action(async (ckpt: string, file: string, o) => {
      await setBackend(o.backend);
      const t = await loadTrainedAsync(new Uint8Array(await readFile(ckpt)));
      const text = await readText(file);
      if (o.strict) t.vocab.encode(text, { onUnknown: 'error' });
      const corpus = prepareCorpus(text, {
        validFraction: 1,
        source: t.config.model.boundary,
        vocab: t.vocab,
        tokenizer: t.tokenizer,
      });
      const rss0 = process.memoryUsage().rss;
      const ev = await evaluateOn(t.model, corpus, {
        seqLen: t.config.model.maxSeqLen,
        maxTokens: o.maxTokens,
        stride: o.stride,
        byWordPosition: o.byWordPosition ? { spaceIds: t.vocab.spaceIds() } : undefined,
      });
      const r = { ...ev, unknown: corpus.unknownInValid, peakRssBytes: Math.max(rss0, process.memoryUsage().rss) };
      if (o.json) out(JSON.stringify(r));
      else {
        out(
          `${ev.bpc.toFixed(4)} bpc on ${ev.tokens} characters, SF ${ev.shorteningFactor.toFixed(2)}, ${ev.tokensPerSecond.toFixed(0)} tok/s` +
            (r.unknown
              ? `; ${r.unknown} characters of the text are outside the vocabulary (read as the unknown symbol)`
              : ''),
        );
        for (const b of ev.byWordPosition ?? [])
          out(
            `  ${b.label === 'whitespace' ? 'whitespace' : `character ${b.label} of a word`}: ${b.bpc.toFixed(4)} bpc on ${b.characters} (${((100 * b.characters) / ev.tokens).toFixed(1)}% of the characters, ${((100 * b.characters * b.bpc) / (ev.tokens * ev.bpc)).toFixed(1)}% of the bits)`,
          );
      }
    });

  program
    .command('generate')
    .description('sample text from a checkpoint')
    .argument('<checkpoint>', 'checkpoint written by train')
    .option('-p, --prompt <text>', 'prompt', ' ')
    .option('-n, --length <n>', 'characters to generate', int('length'), 200)
    .option('-t, --temperature <x>', 'sampling temperature (0 = greedy)', num('temperature'), 0.8)
    .option('-k, --top-k <n>', 'sample from the k most likely characters', int('top-k'))
    .option('--seed <n>', 'random seed', int('seed', 0), 0)
    .option('--stream', 'print each character as it is drawn')
    .option(
      '--window',
      're-run the last maxSeqLen characters at every step instead of decoding with cached keys and values (slower)',
    )
    .option('--backend <name>', BACKEND_HELP, backendOption, 'cpu')
    .action(async (ckpt: string, o) => {
      await setBackend(o.backend);
      const t = await loadTrainedAsync(new Uint8Array(await readFile(ckpt)));
      manualSeed(o.seed);
      const { ids, unknown } = t.vocab.encode(o.prompt);
      if (unknown) out(`note: ${unknown} prompt characters are outside the vocabulary (read as the unknown symbol)`);
      const write = opts.write ?? ((chunk: string) => process.stdout.write(chunk));
      if (o.stream) write(t.vocab.decode(ids));
      const gen = await generateOn(t.model, ids, {
        maxNewTokens: o.length,
        temperature: o.temperature,
        topK: o.topK,
        context: o.window ? 'window' : 'cached',
        onToken: o.stream ? (id) => write(t.vocab.decode([id])) : undefined,
      });
      if (o.stream) write('\n');
      else out(t.vocab.decode(gen));
    });

  withRecipe(
    program
      .command('reproduce')
      .description(
        "issue #9's table as a resumable job: every boundary configuration × seed trained at one recipe (the " +
          'train options below), finished runs skipped, killed ones resumed; then a JSON and a markdown table',
      )
      .argument('[text]', 'UTF-8 training text (not needed with --collect)')
      .requiredOption('-d, --dir <path>', 'directory of the runs: <name>_s<seed>.log (train --json output) and .ckpt')
      .option('--valid <file>', 'held-out UTF-8 text (default: the last --valid-fraction of <text>)')
      .option(
        '--configs <grid>',
        `comma-separated [NAME=]SOURCE[:OPTION=VALUE]... (options sf, alpha, unigram-vocab); default ${DEFAULT_GRID}`,
        parseGrid,
      )
      .option('--seeds <list>', 'comma-separated seeds', parseSeeds, [0, 1])
      .option('--baseline <name>', 'the configuration Δ and the ratios are taken against (default: the first none)')
      .option('--collect', 'train nothing: only build the table from the finished runs in --dir')
      .option('--out <prefix>', 'write <prefix>.json and <prefix>.md (default: <dir>/reproduce)'),
  ).action(async (text: string | undefined, o) => {
    const configs: RunConfig[] = o.configs ?? parseGrid(DEFAULT_GRID);
    const notes: string[] = [];
    let grid: GridResult | null = null;
    if (o.collect) {
      if (!existsSync(o.dir)) throw new ReproduceError(`${o.dir}: no such directory`);
    } else {
      if (text === undefined) throw new ReproduceError('reproduce needs the training <text> (or --collect)');
      if (!existsSync(text)) throw new TextInputError(`${text}: no such file`);
      if (o.valid && !existsSync(o.valid)) throw new TextInputError(`${o.valid}: no such file`);
      mkdirSync(o.dir, { recursive: true });
      const flags = recipeFlags(o);
      checkRecipe(o.dir, { text, valid: o.valid, flags });
      grid = await runGrid({
        text,
        valid: o.valid,
        dir: o.dir,
        configs,
        seeds: o.seeds,
        recipe: flags,
        steps: o.steps,
        runner: opts.runner ?? childRunner({ echo: out }),
        log: out,
      });
    }
    const { records, recipes } = collectRuns(o.dir, configs, o.seeds);
    notes.push(...recipeNotes(recipes));
    const steps = new Set(records.map((r) => r.steps));
    if (steps.size > 1) notes.push(`**The runs differ in steps:** ${[...steps].join(', ')}.`);
    const table = buildTable(configs, o.seeds, records, { baseline: o.baseline });
    const curves = curveMarkdown(configs, o.seeds, records, table.baseline);
    const md = tableMarkdown(table, notes) + (curves ? `\n${curves}` : '');
    const prefix = o.out ?? join(o.dir, 'reproduce');
    writeFileSync(`${prefix}.md`, md);
    writeFileSync(
      `${prefix}.json`,
      `${JSON.stringify({ configs, seeds: o.seeds, records, recipes: Object.fromEntries(recipes), table, grid }, null, 1)}\n`,
    );
    out(md);
    out(`wrote ${prefix}.md and ${prefix}.json`);
    if (grid?.failed.length) throw new ReproduceError(`runs failed: ${grid.failed.join(', ')} (see their .log)`);
  });
  return program;
}

/** Runs the CLI; errors become one line on stderr and exit code 1 (2 for usage errors, from commander). */
export async function main(argv: string[] = process.argv): Promise<number> {
  try {
    await makeProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    console.error(`dyn-pool: ${(e as Error).name === 'Error' ? '' : `${(e as Error).name}: `}${(e as Error).message}`);
    return 1;
  }
}
