// loadGame's CPU time per sheet, each sheet in a fresh process (parse, validate, ground or compile, probe), lenient
// as the protocol server loads a match's rules (`strict: false`: spec violations are warnings):
//   node --conditions=@tessera/source --import tsx bench/load-times.ts <dir> [--from name] [--to name]
//        [--out load-times.jsonl] [--timeout 120]
// Sheets are taken in case-insensitive name order, from --from to --to inclusive. One JSON line per sheet on
// stdout and appended to --out; sheets already in --out are skipped, so a stopped run resumes. Each line: the
// sheet, which reasoner loadGame chose (grounded / compiled / interpreter), CPU and wall seconds of loadGame in
// the child, its peak RSS, or the error / timeout that ended it.
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadGame } from '../src/game.js';

const args = process.argv.slice(2);
if (args[0] === '--child') {
  const kif = readFileSync(args[1]!, 'utf8');
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let m: ReturnType<typeof loadGame>;
  try {
    m = loadGame(kif, { strict: false }); // as the protocol server loads a match's rules
  } catch (e) {
    // a sheet loadGame rejects (invalid GDL): its first line, and the CPU time it took to say so
    const c = process.cpuUsage(c0);
    const issue = (e as { issues?: Array<{ message: string }> }).issues?.[0]?.message;
    const error = `${(e as Error).name}: ${issue ?? (e as Error).message.split('\n')[0]}`;
    console.log(JSON.stringify({ error, cpuS: (c.user + c.system) / 1e6 }));
    process.exit(0);
  }
  const c = process.cpuUsage(c0);
  const wallS = (performance.now() - t0) / 1000;
  const cpuS = (c.user + c.system) / 1e6;
  console.log(JSON.stringify({ kind: m.kind, cpuS, wallS, rssMiB: process.resourceUsage().maxRSS / 1024 }));
  process.exit(0);
}

const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const dir = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
if (!dir) {
  console.error('usage: load-times.ts <dir> [--from name] [--to name] [--out file.jsonl] [--timeout 120]');
  process.exit(2);
}
const from = (opt('from') ?? '').toLowerCase();
const to = (opt('to') ?? '\uffff').toLowerCase();
const out = opt('out');
const timeoutS = Number(opt('timeout') ?? 120);
const done = new Set<string>();
if (out && existsSync(out))
  for (const line of readFileSync(out, 'utf8').split('\n')) if (line) done.add(JSON.parse(line).sheet);

const sheets = readdirSync(dir)
  .filter((f) => f.endsWith('.kif'))
  .map((f) => basename(f, '.kif'))
  .sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()))
  .filter((s) => s.toLowerCase() >= from && s.toLowerCase() <= to && !done.has(s));

const self = fileURLToPath(import.meta.url);
for (const sheet of sheets) {
  const r = spawnSync(process.execPath, [...process.execArgv, self, '--child', join(dir, `${sheet}.kif`)], {
    encoding: 'utf8',
    timeout: timeoutS * 1000,
    maxBuffer: 1 << 20,
  });
  let row: Record<string, unknown>;
  const last = r.stdout?.trim().split('\n').pop();
  if (r.status === 0 && last) row = { sheet, ...JSON.parse(last) };
  else if (r.error || r.signal)
    row = { sheet, error: r.signal === 'SIGTERM' ? `timeout after ${timeoutS} s` : String(r.error ?? r.signal) };
  else row = { sheet, error: (r.stderr ?? '').trim().split('\n').slice(-1)[0] ?? `exit ${r.status}` };
  console.log(JSON.stringify(row));
  if (out) appendFileSync(out, `${JSON.stringify(row)}\n`);
}
