// The CLI's failures: a typed error or an unreadable file is one line on stderr naming the error, exit status 1,
// no stack; and `compare` over the committed 48×/64× evaluation prints the paired table of EVALUATION.md.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  it('refuses unknown options, bad numbers and unusable files before any work; --help only prints usage', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvcli-'));
    try {
      const refused = (args: string[], msg: RegExp) => {
        const r = cli(args);
        expect(r.code, args.join(' ')).toBe(1);
        expect(r.err, args.join(' ')).toMatch(msg);
        expect(r.err, args.join(' ')).not.toMatch(/\n\s+at /);
      };
      refused(['eval', '--sample', '1'], /unknown option '--sample'/);
      refused(['train', '--steps', 'abc'], /--steps takes an integer ≥ 1, not abc/);
      refused(['train', '--lr', '-1'], /--lr takes a number > 0/);
      refused(['curriculum', '--text-weight', 'abc'], /--text-weight takes a number in \[0, 1\]/);
      refused(['eval', '--samples', '-3'], /--samples takes an integer ≥ 1/);
      refused(['eval', '--methods', '('], /--methods takes a regular expression/);
      refused(['train', '--size', 'deep'], /argument 'deep' is invalid/);
      refused(['curriculum', '--stop-at', '2', '--out', join(dir, 'c.safetensors')], /need --checkpoint/);
      refused(['train', '--out', join(dir, 'no', 'x.safetensors')], /no folder .* for/);
      refused(['inspect'], /missing required argument 'file'/);
      refused(
        ['sinks', '--model', 'bench/fixtures/retrieval-lm-v2.safetensors', '--sinks', '1000'],
        /--sinks 1000: the shortest sample/,
      );
      writeFileSync(join(dir, 'empty.txt'), '');
      writeFileSync(join(dir, 'latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
      const model = [
        '--model',
        'bench/fixtures/retrieval-lm-v2.safetensors',
        '--quick',
        '--ratios',
        '4',
        '--methods',
        '^exact',
      ];
      refused(['eval', ...model, '--text', join(dir, 'empty.txt')], /ValueError: --text .*empty\.txt is empty/);
      refused(['eval', ...model, '--text', join(dir, 'latin1.txt')], /FormatError: --text .*latin1\.txt is not UTF-8/);
      writeFileSync(join(dir, 'rows.json'), JSON.stringify({ rows: [{ foo: 1 }], timings: {} }));
      refused(['report', join(dir, 'rows.json')], /row 0 names no method/);
      writeFileSync(join(dir, 'grid.json'), '{ lever');
      refused(
        [
          'sweep',
          '--model',
          'bench/fixtures/retrieval-lm-v2.safetensors',
          '--out',
          join(dir, 's.json'),
          '--grid',
          join(dir, 'grid.json'),
        ],
        /--grid .* is not JSON/,
      );
      for (const args of [['train', '--help'], ['sweep', '--help'], ['--help']]) {
        const r = cli(args);
        expect(r.code, args.join(' ')).toBe(0);
        expect(r.out, args.join(' ')).toMatch(/[Uu]sage: tessera-kv-compress/);
      }
      expect(existsSync('retrieval-lm.safetensors')).toBe(false); // train --help trained nothing
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
