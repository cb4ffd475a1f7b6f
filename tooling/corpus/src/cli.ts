// tessera-corpus: builds the project's data into the git-ignored data/ folder. One command, idempotent.
//   pnpm --filter @tessera/corpus run build-corpus [-- --only text,real --lowercase --force]
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build, DEFAULT_STEPS, STEP_NAMES, type StepName } from './build.js';

const HELP = `tessera-corpus [options]
  --data DIR        output folder (default: <repo root>/data)
  --only A,B        steps to run, of: ${STEP_NAMES.join(', ')}
                    (default: ${DEFAULT_STEPS.join(', ')})
  --skip A,B        steps to leave out
  --langs L,M       text languages (default: en,es,de,ru,fi,vi,he)
  --lowercase       lower-case the text corpora (the dynamic-pooling paper's cleaning)
  --seed N          seed for splits of speech prompts, jitter and noise (default 0)
  --force           rebuild steps even when their stamps match
`;

function repoRoot(from: string): string {
  let d = resolve(from);
  for (;;) {
    if (existsSync(join(d, 'pnpm-workspace.yaml'))) return d;
    const up = dirname(d);
    if (up === d) return resolve(from);
    d = up;
  }
}

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    only: { type: 'string' },
    skip: { type: 'string' },
    langs: { type: 'string', default: 'en,es,de,ru,fi,vi,he' },
    lowercase: { type: 'boolean', default: false },
    seed: { type: 'string', default: '0' },
    force: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const list = (s: string | undefined) =>
  s
    ? s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)
    : [];
const only = list(values.only);
const skip = list(values.skip);
for (const s of [...only, ...skip]) {
  if (!(STEP_NAMES as readonly string[]).includes(s)) {
    process.stderr.write(`unknown step ${JSON.stringify(s)}\n${HELP}`);
    process.exit(2);
  }
}
const steps = (only.length ? only : DEFAULT_STEPS).filter((s) => !skip.includes(s)) as StepName[];
const t0 = Date.now();
const log = (m: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}\n`);
const data = resolve(values.data ?? join(repoRoot(process.cwd()), 'data'));
log(`building ${steps.join(', ')} into ${data}`);
const { failed, missing } = await build({
  data,
  steps,
  langs: list(values.langs),
  lowercase: values.lowercase,
  seed: Number(values.seed),
  force: values.force,
  sliceBytes: 1_500_000,
  log,
});
if (missing.length) {
  log(`not built for want of a tool or a package (everything else was built):\n  ${missing.join('\n  ')}`);
}
if (failed.length) {
  log(`failed:\n  ${failed.join('\n  ')}`);
  process.exit(1);
}
log(`done; see ${join(data, 'MANIFEST.json')}`);
