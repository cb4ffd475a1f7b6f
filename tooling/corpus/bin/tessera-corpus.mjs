#!/usr/bin/env node
// Runs the builder's TypeScript sources through tsx (a private tool: no build step), with the workspace's
// source condition so @tessera/datasets resolves to its sources too.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const tsx = import.meta.resolve('tsx');
const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const r = spawnSync(
  process.execPath,
  ['--conditions=@tessera/source', '--import', tsx, cli, ...process.argv.slice(2)],
  {
    stdio: 'inherit',
  },
);
process.exit(r.status ?? 1);
