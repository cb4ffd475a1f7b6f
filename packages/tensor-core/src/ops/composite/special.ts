// Special functions as composites of primitives, so every backend and autograd get them for free:
// lgamma and digamma for x > 0 (the Binomial prior of dynamic token pooling needs both).
// Recurrence shifts x by 6, then the Stirling / asymptotic series converge to float32 precision.

import { tidy } from '../../runtime.js';
import type { Tensor } from '../../tensor.js';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** log Γ(x) for x > 0: lgamma(x) = lgamma(x + 6) − log(x (x+1) ⋯ (x+5)), Stirling series at z = x + 6. */
export function lgamma(x: Tensor): Tensor {
  return tidy(() => {
    let prod = x;
    for (let k = 1; k < 6; k++) prod = prod.mul(x.add(k));
    const z = x.add(6);
    const zi = z.reciprocal();
    const zi2 = zi.mul(zi);
    // 1/(12z) − 1/(360z³) + 1/(1260z⁵)
    const series = zi.mul(zi2.mul(zi2.mul(1 / 1260).sub(1 / 360)).add(1 / 12));
    const stirling = z.sub(0.5).mul(z.log()).sub(z).add(HALF_LOG_2PI).add(series);
    return stirling.sub(prod.log());
  });
}

/** ψ(x) = d/dx log Γ(x) for x > 0: ψ(x) = ψ(x + 6) − Σ_{k<6} 1/(x + k), asymptotic series at z = x + 6. */
export function digamma(x: Tensor): Tensor {
  return tidy(() => {
    let recip = x.reciprocal();
    for (let k = 1; k < 6; k++) recip = recip.add(x.add(k).reciprocal());
    const z = x.add(6);
    const zi2 = z.mul(z).reciprocal();
    // log z − 1/(2z) − 1/(12z²) + 1/(120z⁴) − 1/(252z⁶)
    const series = zi2.mul(zi2.mul(zi2.mul(-1 / 252).add(1 / 120)).sub(1 / 12));
    return z.log().sub(z.reciprocal().mul(0.5)).add(series).sub(recip);
  });
}
