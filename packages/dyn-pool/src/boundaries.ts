// Boundary sources of dynamic token pooling (Nawrot et al., ACL 2023, arXiv 2211.09761, §3): whitespace,
// entropy spikes of the model's own predictions, end-to-end Gumbel-sigmoid with a Binomial prior, and the
// boundary predictor (BP) that the unigram, entropy and Gumbel sources share. b_t = 1 means x_t closes its
// group; unigram targets come from unigram.ts, fixed boundaries from pooling.ts.
import { F, nn, rand, type Tensor, tidy, ValueError, zeros } from '@tessera/tensor-core';

/**
 * Whitespace boundaries: b_t = 1 where x_t is one of `spaceIds` (the space closes its word's group). Computed
 * with tensor ops, so no read back to the host.
 */
export function whitespaceBoundaries(ids: Tensor, spaceIds: readonly number[]): Tensor {
  if (ids.ndim !== 2) throw new ValueError(`whitespaceBoundaries: ids must be [B, T]; got ${ids.ndim}-D`);
  return tidy(() => {
    let b = zeros(ids.shape);
    for (const id of new Set(spaceIds)) b = b.add(ids.eq(id).float());
    return b;
  });
}

/**
 * Entropy-spike targets from per-position entropies H [B, T] (row-major): b_t = 1 iff H_t > H_{t−i} for
 * every i = 1..k with t − i ≥ 0; position 0 is always a boundary (paper §3.3, k = 2 by default).
 */
export function entropySpikes(entropy: ArrayLike<number>, B: number, T: number, k = 2): Float32Array {
  // k ≤ 0 would make every position a spike (SF 1), a short array zeros for the rows it misses.
  if (!(Number.isInteger(k) && k >= 1)) throw new ValueError(`entropySpikes: k must be an integer ≥ 1; got ${k}`);
  if (!(Number.isInteger(B) && B >= 0 && Number.isInteger(T) && T >= 0) || entropy.length !== B * T)
    throw new ValueError(`entropySpikes: ${entropy.length} entropies for B ${B} × T ${T}`);
  const out = new Float32Array(B * T);
  for (let r = 0; r < B; r++)
    for (let t = 0; t < T; t++) {
      let spike = true;
      for (let i = 1; i <= k && t - i >= 0; i++)
        if (!(entropy[r * T + t]! > entropy[r * T + t - i]!)) {
          spike = false;
          break;
        }
      out[r * T + t] = t === 0 || spike ? 1 : 0;
    }
  return out;
}

/** Entropy (nats) of the softmax of logits [B, T, V] over the last dim: [B, T], detached. */
export function predictiveEntropy(logits: Tensor): Tensor {
  return tidy(() => {
    const lp = logits.detach().logSoftmax(-1);
    // p·log p is 0 where p is 0 (a masked logit gives log p = −∞, and 0·(−∞) would be NaN)
    const p = lp.exp();
    return p
      .mul(lp.where(p.gt(0), 0))
      .sum(-1)
      .neg();
  });
}

/** The boundary predictor: Linear d → hidden, GELU, Linear hidden → 1, giving logits [B, T] (paper App. B). */
export class BoundaryPredictor extends nn.Module {
  readonly fc1: nn.Linear;
  readonly fc2: nn.Linear;
  constructor(dModel: number, hidden: number) {
    super();
    this.fc1 = this.registerModule('fc1', new nn.Linear(dModel, hidden));
    this.fc2 = this.registerModule('fc2', new nn.Linear(hidden, 1));
  }
  forward(h: Tensor): Tensor {
    return tidy(() => this.fc2.forward(this.fc1.forward(h).gelu()).squeeze(-1));
  }
}

/**
 * Hard Gumbel-sigmoid with the straight-through estimator: s = σ((z + log u − log(1 − u)) / τ), forward
 * value 1[s > 0.5], gradient of s. Without noise (eval) the hard decision is 1[z > 0].
 */
export function gumbelSigmoid(logits: Tensor, opts: { temperature?: number; noise?: boolean } = {}): Tensor {
  const { temperature = 0.5, noise = true } = opts;
  if (!(Number.isFinite(temperature) && temperature > 0))
    throw new ValueError(`gumbelSigmoid: temperature must be a finite number > 0; got ${temperature}`);
  return tidy(() => {
    let z = logits;
    if (noise) {
      const u = rand(logits.shape).clamp(1e-6, 1 - 1e-6);
      z = z.add(u.log().sub(u.neg().add(1).log()));
    }
    const soft = z.div(temperature).sigmoid();
    const hard = soft.detach().gt(0.5).float();
    return hard.sub(soft.detach()).add(soft);
  });
}

/**
 * The Binomial prior of the Gumbel source: −log Binomial(k; n = T, α) / T with k = Σ_t b_t per row, averaged
 * over the batch. Its gradient in k is (ψ(k + 1) − ψ(T − k + 1) − log(α / (1 − α))) / T, zero near k ≈ αT.
 */
export function binomialPriorLoss(boundaries: Tensor, alpha: number): Tensor {
  if (!(alpha > 0 && alpha < 1)) throw new ValueError(`binomialPriorLoss: alpha must be in (0, 1); got ${alpha}`);
  if (boundaries.ndim !== 2) throw new ValueError('binomialPriorLoss: boundaries must be [B, T]');
  const T = boundaries.shape[1]!;
  if (boundaries.shape[0] === 0 || T === 0)
    throw new ValueError(`binomialPriorLoss: boundaries [${boundaries.shape}] hold no tokens`);
  return tidy(() => {
    const k = boundaries.sum(1); // [B]
    const logBinom = F.lgamma(k.mul(0).add(T + 1))
      .sub(F.lgamma(k.add(1)))
      .sub(F.lgamma(k.neg().add(T + 1)))
      .add(k.mul(Math.log(alpha)))
      .add(
        k
          .neg()
          .add(T)
          .mul(Math.log(1 - alpha)),
      );
    return logBinom.neg().div(T).mean();
  });
}
