// The prover peer of bench/playouts.bench.ts: without a ggp-base build it must say why and measure nothing (the bench
// then uses the research note's figures); its parser keeps measured sheets and names the ones the harness failed on.
import { afterEach, describe, expect, test } from 'vitest';
import { measureProver, parseProverOutput } from '../bench/peers/prover.js';

const opts = { warmupS: 0, seconds: 0.1, minPlayouts: 1 };
const saved = process.env.GGP_PROVER_CP;
afterEach(() => {
  if (saved === undefined) delete process.env.GGP_PROVER_CP;
  else process.env.GGP_PROVER_CP = saved;
});

describe('ggp-base prover peer', () => {
  test('without GGP_PROVER_CP nothing runs, and the reason is given', () => {
    delete process.env.GGP_PROVER_CP;
    expect(measureProver(['x.kif'], opts)).toEqual({ skipped: 'GGP_PROVER_CP is not set' });
  });

  test('a class path without ggp-base (or no JDK) is a skip with the compiler’s reason, not a throw', () => {
    process.env.GGP_PROVER_CP = '/nonexistent/ggp-base-classes';
    const r = measureProver(['x.kif'], opts);
    expect('skipped' in r && r.skipped).toMatch(/^javac failed: /);
  });

  test('the harness output: measured sheets become rates, failed or empty ones errors', () => {
    const out = [
      '{"game":"ticTacToe","playouts":4822,"playoutsPerCpuS":931.2,"playoutsPerProcessCpuS":722,"playoutsPerWallS":482,"meanPlies":7.6,"undefinedGoals":0}',
      '',
      '{"game":"pentago","playouts":87,"playoutsPerCpuS":13.2,"playoutsPerProcessCpuS":12.2,"playoutsPerWallS":8.45,"meanPlies":57,"undefinedGoals":36}',
      '{"game":"missing","error":"java.nio.file.NoSuchFileException: missing.kif"}',
      '{"game":"slow","playouts":0,"playoutsPerCpuS":null}',
    ].join('\n');
    const { rates, errors } = parseProverOutput(out);
    expect([...rates.keys()]).toEqual(['ticTacToe', 'pentago']);
    expect(rates.get('ticTacToe')).toEqual({
      game: 'ticTacToe',
      playouts: 4822,
      perCpuS: 931.2,
      perProcessCpuS: 722,
      perWallS: 482,
      meanPlies: 7.6,
      undefinedGoals: 0,
    });
    expect(rates.get('pentago')!.undefinedGoals).toBe(36);
    expect(errors).toEqual(['missing: java.nio.file.NoSuchFileException: missing.kif', 'slow: no playout finished']);
  });
});
