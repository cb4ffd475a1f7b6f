#!/usr/bin/env node
// The two quick-start commands (`npm run bench`, `npm test`) come here. They must work on a fresh
// machine that has only Node and npm, so this script finds pnpm (or runs the pinned one through npx),
// installs the workspace, and then runs the job.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager; // pnpm@x.y.z
const job = process.argv[2];
const rest = process.argv.slice(3);

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function havePnpm() {
  // TESSERA_NO_GLOBAL_PNPM=1 exercises the fresh-machine path (npx) on a machine that has pnpm.
  if (process.env.TESSERA_NO_GLOBAL_PNPM) return false;
  const r = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  return r.status === 0 && `pnpm@${r.stdout.trim()}` === pinned;
}

const pnpm = havePnpm() ? ['pnpm', []] : ['npx', ['--yes', pinned]];
const run = (args) => sh(pnpm[0], [...pnpm[1], ...args]);

process.env.TURBO_TELEMETRY_DISABLED ??= '1';
const frozen = process.env.CI ? ['--frozen-lockfile'] : [];
if (!existsSync(join(root, 'node_modules', '.modules.yaml')) || process.env.CI || process.env.TESSERA_REINSTALL) {
  const code = run(['install', ...frozen]);
  if (code !== 0) process.exit(code);
}

let code;
switch (job) {
  case 'test':
    code = run(['exec', 'turbo', 'run', 'test', '--concurrency=1', ...rest]);
    break;
  case 'bench':
    code = run(['--filter', '@tessera/bench-app', 'run', 'start', ...rest]);
    break;
  case 'data':
    code = run(['--filter', '@tessera/corpus', 'run', 'build-corpus', ...rest]);
    break;
  default:
    console.error(`usage: node scripts/run.mjs <test|bench|data> [args]; got ${job ?? 'nothing'}`);
    code = 2;
}
process.exit(code);
