// softmax and logSoftmax, shifted by the (detached) max along the dim for stability.
import { tidy } from '../../runtime.js';
import { normDim } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import * as P from '../prims.js';

export function softmax(x: Tensor, dim: number): Tensor {
  return tidy(() => {
    const d = normDim(dim, x.ndim, 'softmax');
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
