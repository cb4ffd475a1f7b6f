#!/usr/bin/env node
// tessera-kv-compress: train the evaluation LM, run the evaluation, inspect a TKVC stream.
//   tessera-kv-compress train [--size tiny|wide] [--steps 1200] [--lr 3e-3] [--init weights] [--seconds 600] [--seed 0] --out model.safetensors
//   tessera-kv-compress curriculum [--size v2|wide|deep] [--text data/text/en/train.txt] [--checkpoint ckpt] [--seconds N] [--stop-at STEP] [--seed 0] [--lr 3e-3] [--text-weight 0.5] [--repeat-vocab all|tasks] [--bos] [--task-lm] --out model.safetensors
//   tessera-kv-compress eval --model model.safetensors [--window 16] [--text data/text/en/valid.txt] [--samples 200] [--quick]
//       [--ratios 4,8,16,32,64] [--methods REGEX] [--skip-timings] [--dp-rows 512] [--cal-sequences 16]
//       [--cal-seed N] [--attention-mix 0.9] [--json result.json]
//   tessera-kv-compress report result.json [more.json ...]   (joins evaluations split by --methods)
//   tessera-kv-compress sweep --model model.safetensors --out sweep.json [eval's --text/--samples/--quick/--window]
//       [--grid grid.json] LEVER=v1,v2 ...   (one KVTC row per lever combination; resumable; see EVALUATION.md, "Lever sweeps")
//   tessera-kv-compress correlate result.json [more.json ...]   (error ↔ quality: Pearson r and Spearman ρ)
//   tessera-kv-compress compare result.json [more.json ...] --a 'kvtc 64×' --b 'pca truncation 64×'   (paired per query)
//   tessera-kv-compress sinks --model model.safetensors [--samples 100] [--text data/text/en/valid.txt] [--sinks 4] [--json sinks.json]
//       [--ratio 64 [--attention-sampled] [--cal-sequences N] [--cal-seed N] [--attention-mix 0.9] [--dp-rows 512]]
//   tessera-kv-compress inspect cache.tkvc
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { TesseraError } from '@tessera/tensor-core';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ValueError } from './errors.js';
import { readJson, readText } from './eval/files.js';
import { EVAL_MODEL, EVAL_MODEL_WIDE, loadModel, saveModel, trainModel } from './eval/model.js';
import { comparisonReport, correlationReport, markdownReport } from './eval/report.js';
import {
  evaluationSamples,
  evaluationTextSequences,
  formatSinkReconstruction,
  formatSinkStats,
  type SinkReconstruction,
  type SinkSequence,
  type SinkStats,
  sampleSequence,
  sinkReconstruction,
  sinkStats,
  suiteKvtc,
} from './eval/sinks.js';
import { errorQualityPearson, mergeResults, RETRIEVAL_SUITE, runSuite, type SuiteResult } from './eval/suite.js';
import { sweepCli } from './eval/sweep-cli.js';
import { encodeText, FUSED_VOCAB_SIZE, TEXT_VOCAB_SIZE } from './eval/tasks.js';
import { RETRIEVAL_MODEL, RETRIEVAL_MODEL_DEEP, RETRIEVAL_MODEL_WIDE, trainCurriculum } from './eval/train.js';
import { readHeader } from './format.js';

// Typed errors (a bad argument, a corrupt or mismatched file) and a file that cannot be opened are the user's to
// fix: one line naming the error, exit status 1. Anything else is a bug here: Node's report with its stack.
const fail = (e: unknown) => {
  const system = e instanceof Error && typeof (e as { syscall?: unknown }).syscall === 'string';
  if (e instanceof TesseraError || system)
    console.error(`tessera-kv-compress: ${(e as Error).name}: ${(e as Error).message}`);
  else console.error(e);
  process.exit(1);
};
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

/** A result file written by `eval --json` or `sweep`: its rows and timings, else a ValueError naming the file. */
function readResult(path: string): SuiteResult {
  let r: unknown;
  try {
    r = readJson(path, 'result file');
  } catch (e) {
    if (!(e instanceof ValueError)) throw e;
    throw new ValueError(`${path} is not a result file written by eval --json or sweep: ${e.message}`);
  }
  const rows = (r as { rows?: unknown } | null)?.rows;
  if (typeof r !== 'object' || r === null || !Array.isArray(rows))
    throw new ValueError(`${path} is not a result file written by eval --json or sweep: no rows`);
  if (typeof (r as { timings?: unknown }).timings !== 'object' || (r as { timings?: unknown }).timings === null)
    throw new ValueError(`${path} is not a result file written by eval --json or sweep: no timings`);
  rows.forEach((row, i) => {
    if (typeof row !== 'object' || row === null || typeof (row as { method?: unknown }).method !== 'string')
      throw new ValueError(`${path} is not a result file written by eval --json or sweep: row ${i} names no method`);
  });
  return r as SuiteResult;
}

/** Writes through a temporary file renamed over `path`, so an interrupted run never leaves a half-written file. */
function writeAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

// Option parsers: a bad value is one line naming the option and what it takes (commander prints it, exit 1).
const int =
  (name: string, min: number) =>
  (v: string): number => {
    const n = Number(v);
    if (!(Number.isInteger(n) && n >= min))
      throw new InvalidArgumentError(`--${name} takes an integer ≥ ${min}, not ${v}`);
    return n;
  };
const positive =
  (name: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`--${name} takes a number > 0, not ${v}`);
    return n;
  };
const unit =
  (name: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`--${name} takes a number in [0, 1], not ${v}`);
    return n;
  };
const aboveOne =
  (name: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!(Number.isFinite(n) && n > 1))
      throw new InvalidArgumentError(`--${name} takes a compression target above 1, not ${v}`);
    return n;
  };
const ratioList = (v: string): number[] => {
  const xs = v.split(',').map((x) => Number(x));
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x) || x <= 1))
    throw new InvalidArgumentError(`--ratios takes a comma-separated list of compression targets above 1, not ${v}`);
  return xs;
};
const regex = (v: string): RegExp => {
  try {
    return new RegExp(v);
  } catch (e) {
    throw new InvalidArgumentError(`--methods takes a regular expression: ${(e as Error).message}`);
  }
};

/** Refuses an output path whose folder does not exist before the work that would fill it. */
function checkOut(path: string): string {
  const dir = dirname(path);
  if (!existsSync(dir)) throw new ValueError(`no folder ${dir} for ${path}`);
  return path;
}

const program = new Command('tessera-kv-compress')
  .description('KV-cache compression (KVTC and baselines): train the evaluation LM, evaluate, inspect streams')
  .showHelpAfterError('(tessera-kv-compress <command> --help for its options)');

program
  .command('train')
  .description('train the small evaluation LM of the first fixtures')
  .addOption(new Option('--size <size>', 'model size').choices(['tiny', 'wide']).default('tiny'))
  .option('--steps <n>', 'optimizer steps', int('steps', 1), 1200)
  .option('--lr <x>', 'peak learning rate', positive('lr'), 3e-3)
  .option('--init <file>', 'start from these weights (their size must be --size)')
  .option('--seconds <n>', 'stop after this much wall time', positive('seconds'))
  .option('--seed <n>', 'random seed', int('seed', 0), 0)
  .option('--out <file>', 'weights to write', 'retrieval-lm.safetensors')
  .action((o) => {
    const out = checkOut(o.out);
    const config = o.size === 'wide' ? EVAL_MODEL_WIDE : EVAL_MODEL;
    const init = o.init ? new Uint8Array(readFileSync(o.init)) : undefined;
    if (init && JSON.stringify(loadModel(init).config) !== JSON.stringify(config))
      throw new ValueError(
        `--init ${o.init} holds another model than --size ${o.size}: ${JSON.stringify(loadModel(init).config)}`,
      );
    const model = trainModel({
      steps: o.steps,
      maxSeconds: o.seconds,
      seed: o.seed,
      lr: o.lr,
      config,
      init,
      log: (s) => console.log(`step ${s.step}  loss ${s.loss.toFixed(4)}  ${s.seconds.toFixed(0)} s`),
    });
    writeAtomic(out, saveModel(model));
    console.log(`wrote ${out}`);
  });

program
  .command('curriculum')
  .description('train a retrieval LM on the curriculum (resumable with --checkpoint)')
  .addOption(new Option('--size <size>', 'model size').choices(['v2', 'wide', 'deep']).default('v2'))
  .option('--text <file>', 'corpus text (UTF-8; the first 4 MB are used)')
  .option('--checkpoint <file>', 'checkpoint every 100 steps here; an existing one is resumed')
  .option('--seconds <n>', 'stop (with a checkpoint) after this much wall time', positive('seconds'))
  .option('--stop-at <step>', 'stop (with a checkpoint) at this step', int('stop-at', 1))
  .option('--seed <n>', 'random seed', int('seed', 0), 0)
  .option('--lr <x>', 'peak learning rate', positive('lr'), 3e-3)
  .option('--text-weight <x>', 'weight of the text loss', unit('text-weight'), 0.5)
  .addOption(new Option('--repeat-vocab <which>', 'repeat-vocab mix').choices(['all', 'tasks']).default('all'))
  .option('--bos', 'start every sequence with BOS')
  .option('--task-lm', 'next-token targets on the task tokens too')
  .option('--out <file>', 'weights to write when the run ends', 'retrieval-lm-v2.safetensors')
  .action((o, cmd: Command) => {
    const out = checkOut(o.out);
    if ((o.stopAt !== undefined || o.seconds !== undefined) && !o.checkpoint)
      throw new ValueError('--stop-at and --seconds stop a run to resume it later: they need --checkpoint');
    const text = o.text ? encodeText(readText(o.text, '--text', 4_000_000)) : undefined;
    const ckpt: string | undefined = o.checkpoint;
    const configs = { v2: RETRIEVAL_MODEL, wide: RETRIEVAL_MODEL_WIDE, deep: RETRIEVAL_MODEL_DEEP };
    const resume = ckpt && existsSync(ckpt) ? new Uint8Array(readFileSync(ckpt)) : undefined;
    const res = trainCurriculum({
      // a resumed run takes its model from the checkpoint; a --size given as well must name that model
      config: resume && cmd.getOptionValueSource('size') !== 'cli' ? undefined : configs[o.size as 'v2'],
      seed: o.seed,
      lr: o.lr,
      textWeight: o.textWeight,
      repeatVocab: o.repeatVocab,
      // every sequence starts with BOS (pure text too), as LLMs are pre-trained: see train.ts
      bos: Boolean(o.bos),
      // next-token targets on the task tokens too (an LLM's loss at every position): see tasks.ts
      taskLm: Boolean(o.taskLm),
      text,
      resume,
      checkpoint: ckpt ? { every: 100, save: (b) => writeAtomic(ckpt, b) } : undefined,
      maxSeconds: o.seconds,
      stopAt: o.stopAt,
      log: (s) =>
        console.log(
          `step ${s.step}/${s.steps}  T ${s.length}  answer loss ${s.loss.toFixed(4)}  text loss ${s.textLoss.toFixed(4)}  ${s.seconds.toFixed(0)} s`,
        ),
    });
    if (res.done) {
      writeAtomic(out, saveModel(res.model));
      console.log(`wrote ${out}`);
    } else console.log(`stopped at step ${res.step}; run the same command again to resume from ${ckpt}`);
  });

program
  .command('eval')
  .description('every method on a model, with retrieval, perplexity, errors and timings')
  .option('--model <file>', 'model weights', 'retrieval-lm.safetensors')
  .option('--window <n>', 'raw recent tokens', int('window', 1))
  .option('--text <file>', 'held-out text for the perplexity ratio (UTF-8)')
  .option('--samples <n>', "queries per task (default 60; the first fixtures: the suite's own)", int('samples', 1))
  .option('--quick', 'a few samples per task')
  .option('--ratios <list>', 'compression targets, e.g. 4,8,16,32,64', ratioList)
  .option('--methods <regex>', 'only the rows whose method matches', regex)
  .option('--skip-timings', 'no encode/decode and re-prefill timings')
  .option('--dp-rows <n>', 'calibration rows the DP simulates', int('dp-rows', 2))
  .option('--cal-sequences <n>', 'held-out calibration sequences', int('cal-sequences', 1))
  .option('--cal-seed <n>', 'calibration sequence seed', int('cal-seed', 0))
  .option('--attention-mix <x>', 'attention-sampled calibration mix', unit('attention-mix'))
  .option('--json <file>', 'write the result as JSON')
  .action((o) => {
    if (o.json) checkOut(o.json);
    const model = loadModel(new Uint8Array(readFileSync(o.model)));
    const v2 = model.config.vocabSize >= TEXT_VOCAB_SIZE;
    const n: number = o.samples ?? (v2 ? 60 : 0);
    const r = runSuite(model, {
      ...(v2 ? RETRIEVAL_SUITE : {}),
      ...(o.calSequences !== undefined ? { calibrationSequences: o.calSequences } : {}),
      calibrationSeed: o.calSeed,
      attentionMix: o.attentionMix,
      ratios: o.ratios,
      methods: o.methods,
      skipTimings: Boolean(o.skipTimings),
      dpRows: o.dpRows,
      window: o.window ?? (v2 ? RETRIEVAL_SUITE.window : 16),
      samples: o.quick ? { kv: 8, passkey: 5, vt: 5 } : n ? { kv: n, passkey: n, vt: n } : undefined,
      text: o.text ? encodeText(readText(o.text, '--text', 1_000_000)) : undefined,
      log: (l) => console.log(l),
    });
    console.log(`\n${markdownReport(r)}`);
    if (o.json) writeAtomic(o.json, new TextEncoder().encode(JSON.stringify(r)));
  });

program
  .command('report')
  .description('the tables of one or more result files (joins evaluations split by --methods)')
  .argument('<files...>', 'result files written by eval --json')
  .action((files: string[]) => {
    const r = mergeResults(files.map(readResult));
    console.log(markdownReport(r));
    const paper = errorQualityPearson(r.rows, [4, 8, 16, 32, 64]);
    if (!Number.isNaN(paper)) console.log(`\nPearson r over the targets 4, 8, 16, 32, 64× only: ${paper.toFixed(3)}.`);
  });

program
  .command('compare')
  .description('two rows of one evaluation, paired query by query')
  .argument('[files...]', 'result files written by eval --json')
  .option('--a <method>', 'first row')
  .option('--b <method>', 'second row')
  .action((files: string[], o) => {
    if (!files.length || !o.a || !o.b)
      throw new ValueError("compare takes result files written by eval --json and --a 'method' --b 'method'");
    const r = mergeResults(files.map(readResult));
    console.log(comparisonReport(r, o.a, o.b));
  });

program
  .command('correlate')
  .description('error ↔ quality: Pearson r and Spearman ρ')
  .argument('<files...>', 'result files written by eval --json or sweep')
  .action((files: string[]) => {
    console.log(correlationReport(files.map((f) => ({ source: f, result: readResult(f) }))));
  });

program
  .command('sinks')
  .description('attention mass and K/V norms at the first positions; with --ratio, what KVTC does to them')
  .option('--model <file>', 'model weights', 'retrieval-lm.safetensors')
  .option('--samples <n>', 'samples per task', int('samples', 1), 100)
  .option('--text <file>', 'held-out text (UTF-8)')
  .option('--sinks <n>', 'first positions counted as sinks', int('sinks', 1), 4)
  .option('--json <file>', 'write the result as JSON')
  .option('--ratio <x>', 'diagnose KVTC at this target', aboveOne('ratio'))
  .option('--attention-sampled', 'with the attention-sampled calibration')
  .option('--cal-sequences <n>', 'held-out calibration sequences', int('cal-sequences', 1))
  .option('--cal-seed <n>', 'calibration sequence seed', int('cal-seed', 0))
  .option('--attention-mix <x>', 'attention-sampled calibration mix', unit('attention-mix'))
  .option('--dp-rows <n>', 'calibration rows the DP simulates', int('dp-rows', 2))
  .action((o: SinksOptions) => sinksCommand(o));

program
  .command('sweep')
  .description('the lever grid (run `tessera-kv-compress sweep --help` for the levers)')
  .helpOption(false)
  .allowUnknownOption()
  .allowExcessArguments()
  .argument('[args...]')
  .action(() => sweepCli(process.argv.slice(process.argv.indexOf('sweep') + 1)));

program
  .command('inspect')
  .description("a TKVC stream's header as JSON")
  .argument('<file>', 'cache container')
  .action((file: string) => {
    const h = readHeader(new Uint8Array(readFileSync(file)));
    console.log(
      JSON.stringify(
        {
          ...h,
          plan: h.plan?.plans.map((p) => ({ width: p.width, bitsPerToken: p.bitsPerToken, groups: p.groups.length })),
        },
        null,
        2,
      ),
    );
  });

// attention mass on the first positions and key/value norms there, over the evaluation's samples (sinks.ts);
// with --ratio, whether KVTC at that ratio (s = 0) reconstructs the sink positions and keeps their attention
interface SinksOptions {
  model: string;
  samples: number;
  text?: string;
  sinks: number;
  json?: string;
  ratio?: number;
  attentionSampled?: boolean;
  calSequences?: number;
  calSeed?: number;
  attentionMix?: number;
  dpRows?: number;
}

function sinksCommand(o: SinksOptions): void {
  const ratio: number | undefined = o.ratio;
  if (ratio === undefined && o.attentionSampled)
    throw new ValueError('--attention-sampled needs --ratio (the plan to diagnose)');
  if (o.json) checkOut(o.json);
  const modelPath: string = o.model;
  if (!existsSync(modelPath)) throw new ValueError(`sinks: no model file at ${modelPath}`);
  const model = loadModel(new Uint8Array(readFileSync(modelPath)));
  const n: number = o.samples;
  const sinks: number = o.sinks;
  // the samples are RETRIEVAL_SUITE's (fused key–value tokens): the first fixtures' vocabulary lacks them
  if (model.config.vocabSize < FUSED_VOCAB_SIZE)
    throw new ValueError(
      `sinks reads the retrieval suite's fused-pair samples: the model's vocabulary (${model.config.vocabSize}) needs ≥ ${FUSED_VOCAB_SIZE} ids`,
    );
  const smp = evaluationSamples({ kv: n, passkey: n, vt: n });
  const all = [...smp.kv, ...smp.passkey, ...smp.vt];
  const shortest = Math.min(...all.map((s) => s.context.length));
  if (sinks >= shortest) throw new ValueError(`--sinks ${sinks}: the shortest sample has ${shortest} positions`);
  const textPath: string | undefined = o.text;
  const text =
    textPath && model.config.vocabSize >= TEXT_VOCAB_SIZE
      ? encodeText(readText(textPath, '--text', 1_000_000))
      : undefined;
  if (ratio !== undefined) {
    // the calibration and plan of eval's `kvtc N×` / `kvtc N× attention-sampled` rows for the same options
    const calSequences: number | undefined = o.calSequences;
    const mix: number | undefined = o.attentionMix;
    const sampled = Boolean(o.attentionSampled);
    const suite = {
      ...RETRIEVAL_SUITE,
      ...(calSequences !== undefined ? { calibrationSequences: calSequences } : {}),
      calibrationSeed: o.calSeed as number | undefined,
      attentionMix: mix,
      dpRows: o.dpRows as number | undefined,
      text,
    };
    const method = `kvtc ${ratio}×${sampled ? ' attention-sampled' : ''}`;
    const t0 = process.cpuUsage();
    const cpu = () => {
      const u = process.cpuUsage(t0);
      return `${((u.user + u.system) / 1e6).toFixed(0)} s CPU`;
    };
    const kv = suiteKvtc(model, suite, ratio, sampled);
    const bits = kv.plan.plans.map((p) => p.bitsPerToken.toFixed(1)).join(' / ');
    console.log(`${method}: ${kv.calibrationRows} calibration rows, plan bits per token (K / V) ${bits}; ${cpu()}`);
    const seqs: [string, SinkSequence[]][] = [
      ['task contexts (every position ≥ sinks)', all.map((s) => sampleSequence(s, 'context', sinks))],
      ['answer positions (where a query reads its answer)', all.map((s) => sampleSequence(s, 'answer', sinks))],
    ];
    if (text) seqs.push(['held-out text (BOS + 192 characters)', evaluationTextSequences(text)]);
    const results: [string, SinkReconstruction][] = [];
    for (const [name, ss] of seqs) {
      const r = sinkReconstruction(model, ss, kv, { sinks, window: suite.window });
      results.push([name, r]);
      console.log(`\n${formatSinkReconstruction(`${method}, ${name}`, r)}\n(${cpu()})`);
    }
    const json: string | undefined = o.json;
    const out = {
      method,
      ratio,
      attentionSampled: sampled,
      calibrationRows: kv.calibrationRows,
      bitsPerToken: kv.plan.plans.map((p) => p.bitsPerToken),
      suite: { ...suite, text: textPath ? 'given' : undefined },
      groups: Object.fromEntries(results),
    };
    if (json) writeAtomic(json, new TextEncoder().encode(JSON.stringify(out, null, 1)));
  } else {
    const groups: [string, SinkStats][] = [
      [
        'task contexts (every position ≥ sinks)',
        sinkStats(
          model,
          all.map((s) => sampleSequence(s, 'context', sinks)),
          { sinks },
        ),
      ],
      [
        'answer positions (where a query reads its answer)',
        sinkStats(
          model,
          all.map((s) => sampleSequence(s, 'answer', sinks)),
          { sinks },
        ),
      ],
    ];
    if (text) {
      groups.push(['held-out text (BOS + 192 characters)', sinkStats(model, evaluationTextSequences(text), { sinks })]);
    }
    for (const [name, s] of groups) console.log(`\n${formatSinkStats(name, s)}`);
    const json: string | undefined = o.json;
    if (json) writeAtomic(json, new TextEncoder().encode(JSON.stringify(Object.fromEntries(groups), null, 1)));
  }
}

await program.parseAsync(process.argv);
