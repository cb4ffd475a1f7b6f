// softmax and logSoftmax. float32 runs the fused primitive over the last dim (other dims are permuted
// last and back, as views); other dtypes the composite, shifted by the (detached) max for stability.
import { tidy } from '../../runtime.js';
import { normDim } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import * as P from '../prims.js';

function fused(x: Tensor, d: number, log: boolean): Tensor {
  const last = x.ndim - 1;
  if (d === last) return P.softmax(x, log);
  const t = x.transpose(d, last);
  const y = P.softmax(t, log);
  const out = y.transpose(d, last);
  t.dispose();
  y.dispose();
  return out;
}

const canFuse = (x: Tensor) => x.dtype === 'float32' && x.ndim > 0;

export function softmax(x: Tensor, dim: number): Tensor {
  return tidy(() => {
    const d = normDim(dim, x.ndim, 'softmax');
    if (canFuse(x)) return fused(x, d, false);
    const m = P.withoutGrad(() => P.reduce('max', x, [d], true));
    const z = x.sub(m);
    const e = z.exp();
    const s = P.reduce('sum', e, [d], true);
    const out = e.div(s);
    for (const t of [m, z, e, s]) t.dispose();
    return out;
  });
}

export function logSoftmax(x: Tensor, dim: number): Tensor {
  return tidy(() => {
    const d = normDim(dim, x.ndim, 'logSoftmax');
    if (canFuse(x)) return fused(x, d, true);
    const m = P.withoutGrad(() => P.reduce('max', x, [d], true));
    const z = x.sub(m);
    const e = z.exp();
    const s = P.reduce('sum', e, [d], true);
    const l = s.log();
    const out = z.sub(l);
    for (const t of [m, z, e, s, l]) t.dispose();
    return out;
  });
}
