// Markdown tables of an evaluation (the README's bench table is pasted from this).
import type { SuiteResult, TaskScore } from './suite.js';

// null too: results read back from JSON carry NaN as null
const f = (x: number | undefined | null, d = 2) => (x == null || Number.isNaN(x) ? '–' : x.toFixed(d));

export function markdownReport(r: SuiteResult): string {
  const lines = [
    '| method | ratio (all tokens) | ratio (compressed tokens, packed → DEFLATE / range) | container ratio | key err | value err | attn-out err | PPL ratio | KV lookup | passkey | VT |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const m of r.rows)
    lines.push(
      `| ${m.method} | ${f(m.ratio)}× | ${m.ratioPacked ? `${f(m.ratioPacked, 1)}× → ${f(m.ratioDeflated, 1)}× / ${f(m.ratioRange, 1)}×` : '–'} | ${m.ratioContainer ? `${f(m.ratioContainer)}×` : '–'} | ${f(m.keyErr, 3)} | ${f(m.valueErr, 3)} | ${f(m.attnErr, 3)} | ${f(m.pplRatio, 3)} | ${f(m.kvAcc, 1)} | ${f(m.passkeyAcc, 1)} | ${f(m.vtAcc, 1)} |`,
    );
  if (r.rows[0]?.scores) {
    const sc = (x: TaskScore) =>
      `${f(x.acc, 1)} [${f(x.lo, 1)}, ${f(x.hi, 1)}] | ${x.diff >= 0 ? '+' : ''}${f(x.diff, 1)} [${f(x.diffLo, 1)}, ${f(x.diffHi, 1)}]`;
    const s0 = r.rows[0].scores;
    lines.push(
      '',
      `Retrieval, exact match per query with 95% Wilson intervals, and the paired difference to the exact cache (points, 95% interval); n = ${s0.kv.n} / ${s0.passkey.n} / ${s0.vt.n} queries:`,
      '',
      '| method | KV lookup | Δ | passkey | Δ | VT | Δ | text PPL ratio |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const m of r.rows)
      lines.push(
        `| ${m.method} | ${sc(m.scores.kv)} | ${sc(m.scores.passkey)} | ${sc(m.scores.vt)} | ${f(m.textPplRatio, 3)} |`,
      );
  }
  const t = r.timings;
  lines.push(
    '',
    `Context ${t.context}: re-prefill ${f(t.prefillMs, 0)} ms vs decompress + restore ${f(t.decompressMs, 1)} ms (${f(t.speedup, 1)}× faster${t.repeats ? `; medians of ${t.repeats} interleaved runs, ${t.clock === 'cpu' ? 'CPU' : 'wall'} time` : ''}); KVTC 16× encode ${f(t.encodeMBs, 1)} MB/s, decode ${f(t.decodeMBs, 1)} MB/s (fp16-equivalent); calibration PCA ${f(t.calibrationMs, 0)} ms, DP ${f(t.dpMs, 0)} ms; Pearson r(reconstruction error, log PPL ratio) over KVTC ratios = ${f(r.errorPplPearson, 3)}.`,
  );
  return lines.join('\n');
}
