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
import { TesseraError } from '@tessera/tensor-core';
import { ValueError } from './errors.js';
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

/** A result file written by `eval --json` or `sweep`: JSON with a `rows` array, else a ValueError naming the file. */
function readResult(path: string): SuiteResult {
  let r: unknown;
  try {
    r = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    throw new ValueError(`${path} is not a result file written by eval --json or sweep: ${e.message}`);
  }
  if (typeof r !== 'object' || r === null || !Array.isArray((r as { rows?: unknown }).rows))
    throw new ValueError(`${path} is not a result file written by eval --json or sweep: no rows`);
  return r as SuiteResult;
}

/** Writes through a temporary file renamed over `path`, so an interrupted run never leaves a half-written file. */
function writeAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** An optional integer flag ≥ min (undefined when absent). */
function intArg(name: string, min: number): number | undefined {
  const x = arg(name);
  if (x === undefined) return undefined;
  if (!(Number.isInteger(Number(x)) && Number(x) >= min))
    throw new ValueError(`--${name} takes an integer ≥ ${min}, not ${x}`);
  return Number(x);
}

/** --attention-mix, a number in [0, 1] (undefined when absent). */
function attentionMixArg(): number | undefined {
  const mix = arg('attention-mix');
  if (mix !== undefined && !(Number(mix) >= 0 && Number(mix) <= 1))
    throw new ValueError(`--attention-mix takes a number in [0, 1], not ${mix}`);
  return mix === undefined ? undefined : Number(mix);
}

const cmd = process.argv[2];
if (cmd === 'train') {
  const out = arg('out', 'retrieval-lm.safetensors')!;
  const model = trainModel({
    steps: Number(arg('steps', '1200')),
    maxSeconds: arg('seconds') ? Number(arg('seconds')) : undefined,
    seed: Number(arg('seed', '0')),
    lr: Number(arg('lr', '3e-3')),
    config: arg('size') === 'wide' ? EVAL_MODEL_WIDE : EVAL_MODEL,
    init: arg('init') ? new Uint8Array(readFileSync(arg('init')!)) : undefined,
    log: (s) => console.log(`step ${s.step}  loss ${s.loss.toFixed(4)}  ${s.seconds.toFixed(0)} s`),
  });
  writeAtomic(out, saveModel(model));
  console.log(`wrote ${out}`);
} else if (cmd === 'curriculum') {
  // corpus text (the corpus builder's data/text/en/train.txt); the first 4 MB are plenty for these steps
  const textPath = arg('text');
  const text = textPath ? encodeText(readFileSync(textPath, 'utf8').slice(0, 4_000_000)) : undefined;
  const ckpt = arg('checkpoint');
  const size = arg('size', 'v2');
  const configs = { v2: RETRIEVAL_MODEL, wide: RETRIEVAL_MODEL_WIDE, deep: RETRIEVAL_MODEL_DEEP };
  if (size !== 'v2' && size !== 'wide' && size !== 'deep')
    throw new ValueError(`--size must be v2, wide or deep, not ${size}`);
  const res = trainCurriculum({
    // a resumed run takes its model config from the checkpoint
    config: configs[size],
    seed: Number(arg('seed', '0')),
    lr: Number(arg('lr', '3e-3')),
    textWeight: Number(arg('text-weight', '0.5')),
    repeatVocab: arg('repeat-vocab', 'all') === 'tasks' ? 'tasks' : 'all',
    // every sequence starts with BOS (pure text too), as LLMs are pre-trained: see train.ts
    bos: process.argv.includes('--bos'),
    // next-token targets on the task tokens too (an LLM's loss at every position): see tasks.ts
    taskLm: process.argv.includes('--task-lm'),
    text,
    resume: ckpt && existsSync(ckpt) ? new Uint8Array(readFileSync(ckpt)) : undefined,
    checkpoint: ckpt ? { every: 100, save: (b) => writeAtomic(ckpt, b) } : undefined,
    maxSeconds: arg('seconds') ? Number(arg('seconds')) : undefined,
    stopAt: arg('stop-at') ? Number(arg('stop-at')) : undefined,
    log: (s) =>
      console.log(
        `step ${s.step}/${s.steps}  T ${s.length}  answer loss ${s.loss.toFixed(4)}  text loss ${s.textLoss.toFixed(4)}  ${s.seconds.toFixed(0)} s`,
      ),
  });
  if (res.done) {
    const out = arg('out', 'retrieval-lm-v2.safetensors')!;
    writeAtomic(out, saveModel(res.model));
    console.log(`wrote ${out}`);
  } else console.log(`stopped at step ${res.step}; run the same command again to resume from ${ckpt}`);
} else if (cmd === 'eval') {
  const model = loadModel(new Uint8Array(readFileSync(arg('model', 'retrieval-lm.safetensors')!)));
  const quick = process.argv.includes('--quick');
  const textPath = arg('text');
  const v2 = model.config.vocabSize >= TEXT_VOCAB_SIZE;
  const n = Number(arg('samples', v2 ? '60' : '0'));
  const ratios = arg('ratios')
    ?.split(',')
    .map((x) => Number(x));
  if (ratios && (ratios.length === 0 || ratios.some((x) => !Number.isFinite(x) || x <= 1)))
    throw new ValueError(`--ratios takes a comma-separated list of compression targets above 1, not ${arg('ratios')}`);
  const methods = arg('methods') ? new RegExp(arg('methods')!) : undefined;
  const dpRows = arg('dp-rows');
  if (dpRows !== undefined && !(Number.isInteger(Number(dpRows)) && Number(dpRows) >= 2))
    throw new ValueError(`--dp-rows takes an integer ≥ 2 (calibration rows the DP simulates), not ${dpRows}`);
  const calSequences = intArg('cal-sequences', 1);
  const calSeed = intArg('cal-seed', 0);
  const mix = attentionMixArg();
  const r = runSuite(model, {
    ...(v2 ? RETRIEVAL_SUITE : {}),
    ...(calSequences !== undefined ? { calibrationSequences: calSequences } : {}),
    calibrationSeed: calSeed,
    attentionMix: mix,
    ratios,
    methods,
    skipTimings: process.argv.includes('--skip-timings'),
    dpRows: arg('dp-rows') ? Number(arg('dp-rows')) : undefined,
    window: Number(arg('window', v2 ? String(RETRIEVAL_SUITE.window) : '16')),
    samples: quick ? { kv: 8, passkey: 5, vt: 5 } : n ? { kv: n, passkey: n, vt: n } : undefined,
    text: textPath ? encodeText(readFileSync(textPath, 'utf8').slice(0, 1_000_000)) : undefined,
    log: (l) => console.log(l),
  });
  console.log(`\n${markdownReport(r)}`);
  const json = arg('json');
  if (json) writeAtomic(json, new TextEncoder().encode(JSON.stringify(r)));
} else if (cmd === 'report') {
  const files = process.argv.slice(3);
  if (!files.length) throw new ValueError('report takes one or more result files written by eval --json');
  const r = mergeResults(files.map(readResult));
  console.log(markdownReport(r));
  const paper = errorQualityPearson(r.rows, [4, 8, 16, 32, 64]);
  if (!Number.isNaN(paper)) console.log(`\nPearson r over the targets 4, 8, 16, 32, 64× only: ${paper.toFixed(3)}.`);
} else if (cmd === 'compare') {
  // two rows of one evaluation (or of files split by --methods), paired query by query
  const files = process.argv.slice(3).filter((x, i, all) => !x.startsWith('--') && !all[i - 1]?.startsWith('--'));
  const a = arg('a');
  const b = arg('b');
  if (!files.length || !a || !b)
    throw new ValueError("compare takes result files written by eval --json and --a 'method' --b 'method'");
  const r = mergeResults(files.map(readResult));
  console.log(comparisonReport(r, a, b));
} else if (cmd === 'sinks') {
  // attention mass on the first positions and key/value norms there, over the evaluation's samples (sinks.ts);
  // with --ratio, whether KVTC at that ratio (s = 0) reconstructs the sink positions and keeps their attention
  const ratioArg = arg('ratio');
  const ratio = ratioArg === undefined ? undefined : Number(ratioArg);
  // checked before the model loads, so a typo fails at once
  if (ratio !== undefined && !(Number.isFinite(ratio) && ratio > 1))
    throw new ValueError(`--ratio takes a finite compression target above 1, not ${ratioArg}`);
  if (ratio === undefined && process.argv.includes('--attention-sampled'))
    throw new ValueError('--attention-sampled needs --ratio (the plan to diagnose)');
  const modelPath = arg('model', 'retrieval-lm.safetensors')!;
  if (!existsSync(modelPath)) throw new ValueError(`sinks: no model file at ${modelPath}`);
  const model = loadModel(new Uint8Array(readFileSync(modelPath)));
  const n = Number(arg('samples', '100'));
  if (!(Number.isInteger(n) && n >= 1)) throw new ValueError(`--samples takes an integer ≥ 1, not ${arg('samples')}`);
  const sinks = intArg('sinks', 0) ?? 4;
  // the samples are RETRIEVAL_SUITE's (fused key–value tokens): the first fixtures' vocabulary lacks them
  if (model.config.vocabSize < FUSED_VOCAB_SIZE)
    throw new ValueError(
      `sinks reads the retrieval suite's fused-pair samples: the model's vocabulary (${model.config.vocabSize}) needs ≥ ${FUSED_VOCAB_SIZE} ids`,
    );
  const smp = evaluationSamples({ kv: n, passkey: n, vt: n });
  const all = [...smp.kv, ...smp.passkey, ...smp.vt];
  const textPath = arg('text');
  const text =
    textPath && model.config.vocabSize >= TEXT_VOCAB_SIZE
      ? encodeText(readFileSync(textPath, 'utf8').slice(0, 1_000_000))
      : undefined;
  if (ratio !== undefined) {
    // the calibration and plan of eval's `kvtc N×` / `kvtc N× attention-sampled` rows for the same options
    const calSequences = intArg('cal-sequences', 1);
    const mix = attentionMixArg();
    const sampled = process.argv.includes('--attention-sampled');
    const suite = {
      ...RETRIEVAL_SUITE,
      ...(calSequences !== undefined ? { calibrationSequences: calSequences } : {}),
      calibrationSeed: intArg('cal-seed', 0),
      attentionMix: mix,
      dpRows: intArg('dp-rows', 2),
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
    const json = arg('json');
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
    const json = arg('json');
    if (json) writeAtomic(json, new TextEncoder().encode(JSON.stringify(Object.fromEntries(groups), null, 1)));
  }
} else if (cmd === 'sweep') {
  sweepCli(process.argv.slice(3));
} else if (cmd === 'correlate') {
  const files = process.argv.slice(3);
  if (!files.length) throw new ValueError('correlate takes one or more result files written by eval --json or sweep');
  console.log(correlationReport(files.map((f) => ({ source: f, result: readResult(f) }))));
} else if (cmd === 'inspect') {
  const h = readHeader(new Uint8Array(readFileSync(process.argv[3]!)));
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
} else {
  console.log(
    'usage: tessera-kv-compress train|curriculum|eval|report|compare|sinks|sweep|correlate|inspect (see the README)',
  );
  // --help and no command are requests for the usage, not errors.
  process.exitCode = cmd && cmd !== '--help' && cmd !== '-h' && cmd !== 'help' ? 1 : 0;
}
