// Markdown tables of an evaluation (the README's bench table is pasted from this).
import type { SuiteResult } from './suite.js';

const f = (x: number | undefined, d = 2) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));

export function markdownReport(r: SuiteResult): string {
  const lines = [
    '| method | ratio (all tokens) | ratio (compressed tokens, packed → DEFLATE) | container ratio | key err | value err | attn-out err | PPL ratio | KV lookup | passkey | VT |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const m of r.rows)
    lines.push(
      `| ${m.method} | ${f(m.ratio)}× | ${m.ratioPacked ? `${f(m.ratioPacked, 1)}× → ${f(m.ratioDeflated, 1)}×` : '–'} | ${m.ratioContainer ? `${f(m.ratioContainer)}×` : '–'} | ${f(m.keyErr, 3)} | ${f(m.valueErr, 3)} | ${f(m.attnErr, 3)} | ${f(m.pplRatio, 3)} | ${f(m.kvAcc, 1)} | ${f(m.passkeyAcc, 1)} | ${f(m.vtAcc, 1)} |`,
    );
  const t = r.timings;
  lines.push(
    '',
    `Context ${t.context}: re-prefill ${f(t.prefillMs, 0)} ms vs decompress + restore ${f(t.decompressMs, 1)} ms (${f(t.speedup, 1)}× faster); KVTC 16× encode ${f(t.encodeMBs, 1)} MB/s, decode ${f(t.decodeMBs, 1)} MB/s (fp16-equivalent); calibration PCA ${f(t.calibrationMs, 0)} ms, DP ${f(t.dpMs, 0)} ms; Pearson r(reconstruction error, log PPL ratio) over KVTC ratios = ${f(r.errorPplPearson, 3)}.`,
  );
  return lines.join('\n');
}
