// The README's example, run as written. Only the inputs it leaves to the reader (a model, held-out documents,
// a prompt and the next turn's ids) are defined here: a tiny random CausalLM, so the example runs in seconds.

import {
  calibrate,
  collectKV,
  concatRows,
  fitPlan,
  KVCacheStore,
  KVTCStorage,
  MemoryBackend,
} from '@tessera/kv-compress';
import { manualSeed, nn, tensor } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/linalg.js';

describe('README example', () => {
  it('calibrates, decodes through a compressed cache, stores it and restores it for the next turn', async () => {
    manualSeed(5);
    const model = new nn.CausalLM({ vocabSize: 32, dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, dFF: 64 });
    model.eval();
    const rng = new Rng(9);
    const ids = (n: number) => Array.from({ length: n }, () => rng.int(32));
    const heldOutDocs = [ids(64), ids(64), ids(64), ids(64)];
    // longer than sinks + window (4 + 128), so the cache really compresses while generating
    const promptIds = ids(160);
    const prompt = tensor(Int32Array.from(promptIds), { shape: [1, promptIds.length], dtype: 'int32' });

    // ---- README block, as written
    const rows = concatRows(heldOutDocs.map((ids) => collectKV(model, ids)));
    const cal = calibrate(rows); // { mode: 'per-layer' } for the ablation
    const plan = fitPlan(cal, rows, { ratio: 16 }); // or { maxRelError: 0.05 }

    const storage = new KVTCStorage(cal, plan, { sinks: 4, window: 128, every: 16 });
    const out = model.generate(prompt, { maxNewTokens: 64, cache: new nn.KVCache(storage) });
    console.log(storage.stats()); // physical bytes vs fp16 bytes of every token seen

    const heldIds = Array.from(out.dataSync()).slice(0, -1);
    const store = await KVCacheStore.open(new MemoryBackend(), { maxBytes: 64 << 20 });
    await store.put(heldIds, storage.serialize());

    const nextTurnIds = [...Array.from(out.dataSync()), ...ids(5)];
    const hit = await store.longestPrefix(nextTurnIds); // { length, payload } | null
    let logits: ReturnType<typeof model.forward> | undefined;
    if (hit) {
      const { cache } = KVTCStorage.restore(hit.payload, cal, plan); // continues at position hit.length
      const rest = nextTurnIds.slice(hit.length);
      logits = model.forward(tensor(Int32Array.from(rest), { shape: [1, rest.length], dtype: 'int32' }), { cache });
    }
    // ---- end of the README block

    const st = storage.stats();
    expect(out.shape).toEqual([1, 160 + 64]);
    expect(st.tokensSeen).toBe(2 * (160 + 63)); // per layer, summed over the 2 layers
    expect(st.bytes).toBeLessThan(st.fp16Bytes);
    expect(storage.chunks.length).toBeGreaterThan(0);
    expect(hit?.length).toBe(heldIds.length);
    expect(logits!.shape).toEqual([1, 6, 32]);

    // the restored continuation sees the same positions as one exact forward pass over the whole next turn
    const exact = model.forward(
      tensor(Int32Array.from(nextTurnIds), { shape: [1, nextTurnIds.length], dtype: 'int32' }),
    );
    const a = logits!.dataSync();
    const b = Array.from(exact.dataSync()).slice(-6 * 32);
    let num = 0;
    let den = 0;
    for (let i = 0; i < a.length; i++) {
      num += (a[i]! - b[i]!) ** 2;
      den += b[i]! ** 2;
    }
    expect(Math.sqrt(num / den)).toBeLessThan(0.2);
  });
});
