// The CLI's failures: a typed error or an unreadable file is one line on stderr naming the error, exit status 1,
// no stack; and `compare` over the committed 48×/64× evaluation prints the paired table of EVALUATION.md.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cwd = fileURLToPath(new URL('..', import.meta.url));
const cli = (args: string[]) => {
  try {
    const out = execFileSync(
      process.execPath,
      ['--conditions=@tessera/source', '--import', 'tsx', 'src/cli.ts', ...args],
      {
        cwd,
        stdio: 'pipe',
        timeout: 60_000,
      },
    );
    return { code: 0, out: String(out), err: '' };
  } catch (e) {
    const x = e as { status: number; stdout: Buffer; stderr: Buffer };
    return { code: x.status, out: String(x.stdout), err: String(x.stderr) };
  }
};

describe('tessera-kv-compress on bad input and compare', () => {
  it('prints one line per failure and exits 1; compare reproduces the recorded paired table', () => {
    const old = cli([
      'compare',
      'bench/fixtures/eval-v2-deep/kvtc-32-48-64.json',
      '--a',
      'kvtc 32×',
      '--b',
      'kvtc 64×',
    ]);
    expect(old.code).toBe(1);
    expect(old.err.trim()).toBe(
      "tessera-kv-compress: ValueError: compare: 'kvtc 32×' has no per-query hits (written before they were stored): run eval again",
    );
    const noRows = cli(['compare', 'bench/fixtures/eval-v2-deep/dp-vs-truncation-48-64.json', '--a', 'kvtc 64×']);
    expect(noRows.code).toBe(1);
    expect(noRows.err.trim()).toBe(
      "tessera-kv-compress: ValueError: compare takes result files written by eval --json and --a 'method' --b 'method'",
    );
    const notJson = cli(['report', 'README.md']);
    expect(notJson.code).toBe(1);
    expect(notJson.err).toMatch(/^tessera-kv-compress: ValueError: README\.md is not a result file written by eval/);
    expect(notJson.err).not.toMatch(/\n\s+at /);
    const missing = cli(['report', 'no-such.json']);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^tessera-kv-compress: Error: ENOENT: no such file or directory, open 'no-such\.json'/);
    const ok = cli([
      'compare',
      'bench/fixtures/eval-v2-deep/dp-vs-truncation-48-64.json',
      '--a',
      'pca truncation 64×',
      '--b',
      'kvtc 64×',
    ]);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('| kv | 800 | 83.6 | 87.6 | +4.0 [2.2, 5.8] | 11 | 43 | 1.4e-5 |');
  }, 120_000);
});
