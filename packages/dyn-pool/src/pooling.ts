// Segment mean pooling and up-sampling of dynamic token pooling, with the conventions of the reference
// code's shortening.py (Nawrot et al., "Efficient Transformers with Dynamic Token Pooling", ACL 2023,
// arXiv 2211.09761; github.com/PiotrNawrot/dynamic-pooling). Written from the paper and the research
// notes; the toy example of the notes is a test.
//
// b_t = 1 means x_t closes its group. Token t belongs to group g_t = Σ_{i<t} b_i (exclusive cumsum); the
// shortened sequence is [null; mean of group 0; …; mean of group S−1] with S = max_row Σ b (the unfinished
// trailing group of the fullest row is dropped). Token t reads row m_t = Σ_{i≤t} b_i (inclusive cumsum) of it,
// i.e. the last group closed at or before t, which keeps the model autoregressive.
import { arange, cat, ShapeError, type Tensor, tidy, ValueError } from '@tessera/tensor-core';

/** Number of groups the shortened sequence keeps (without the null group): the largest row sum of b. */
export function numSegments(boundaries: Tensor): number {
  if (boundaries.ndim !== 2) throw new ValueError(`numSegments: boundaries must be [B, T]; got ${boundaries.ndim}-D`);
  return countSegments(boundaries.detach().dataSync(), boundaries.shape[0]!, boundaries.shape[1]!);
}

/** `numSegments` with an async read back, for backends that cannot read synchronously (WebGPU). */
export async function numSegmentsAsync(boundaries: Tensor): Promise<number> {
  if (boundaries.ndim !== 2) throw new ValueError(`numSegments: boundaries must be [B, T]; got ${boundaries.ndim}-D`);
  return countSegments(await boundaries.data(), boundaries.shape[0]!, boundaries.shape[1]!);
}

function countSegments(v: ArrayLike<number>, B: number, T: number): number {
  let S = 0;
  for (let r = 0; r < B; r++) {
    let s = 0;
    for (let t = 0; t < T; t++) s += v[r * T + t]! > 0.5 ? 1 : 0;
    if (s > S) S = s;
  }
  return S;
}

/**
 * Weights [B, T, S] that put token t on column `index_t` with value 1 − (j − index_t) (= 1 in value, but its
 * gradient reaches b through the cumsum: the straight-through path of the Gumbel boundaries, after Bhati et
 * al. 2021), normalised over `normDim` with + 1e-9 as in the reference.
 */
function assignment(index: Tensor, hardIndex: Tensor, S: number, normDim: 1 | 2): Tensor {
  return tidy(() => {
    const j = arange(0, S, 1, { dtype: 'float32' }).reshape([1, 1, S]);
    const foo = j.sub(index.unsqueeze(2)); // [B, T, S]
    const onGroup = j.eq(hardIndex.unsqueeze(2));
    const w = foo.neg().add(1).where(onGroup, 0);
    return w.div(w.sum(normDim, true).add(1e-9));
  });
}

/**
 * Mean-pools h [B, T, d] over the segments closed by boundaries b [B, T] (0/1 floats, possibly carrying a
 * straight-through gradient) and prepends the null group [d]: returns [B, S + 1, d].
 */
export function downsample(
  h: Tensor,
  boundaries: Tensor,
  nullGroup: Tensor,
  /** numSegments(boundaries), when the caller has it already (e.g. read back asynchronously). */
  segments?: number,
): Tensor {
  checkPair('downsample', h, boundaries);
  const [B, , d] = h.shape as [number, number, number];
  if (segments !== undefined && !(Number.isInteger(segments) && segments >= 0))
    throw new ValueError(`downsample: segments must be an integer ≥ 0; got ${segments}`);
  const S = segments ?? numSegments(boundaries);
  return tidy(() => {
    const nul = nullGroup.reshape([1, 1, d]).expand([B, 1, d]);
    if (S === 0) return nul.contiguous();
    const hard = boundaries.detach().gt(0.5).float();
    const g = boundaries.cumsum(1).sub(boundaries); // exclusive cumsum
    const gHard = hard.cumsum(1).sub(hard);
    const w = assignment(g, gHard, S, 1); // [B, T, S], columns sum to 1
    const pooled = w.transpose(1, 2).matmul(h); // [B, S, d]
    return cat([nul, pooled], 1);
  });
}

/** Up-samples shortened [B, S + 1, d] back to T positions: u_t = shortened[m_t], m_t = Σ_{i≤t} b_i. */
export function upsample(shortened: Tensor, boundaries: Tensor, segments?: number): Tensor {
  if (shortened.ndim !== 3 || boundaries.ndim !== 2 || shortened.shape[0] !== boundaries.shape[0])
    throw new ValueError(
      `upsample expects shortened [B, S+1, d] and boundaries [B, T]; got [${shortened.shape}] and [${boundaries.shape}]`,
    );
  const S1 = shortened.shape[1]!;
  // With the segment count known (as downsample takes it), fewer rows than groups + 1 would up-sample the last
  // groups to zeros; counting them here would need a synchronous read, so it is the caller's to give.
  if (segments !== undefined && S1 < segments + 1)
    throw new ShapeError(`upsample: ${segments} groups need ${segments + 1} shortened rows; got ${S1}`);
  return tidy(() => {
    const hard = boundaries.detach().gt(0.5).float();
    const m = boundaries.cumsum(1);
    const mHard = hard.cumsum(1);
    const w = assignment(m, mHard, S1, 2); // [B, T, S + 1], one non-zero per row
    return w.matmul(shortened);
  });
}

function checkPair(name: string, h: Tensor, b: Tensor): void {
  if (h.ndim !== 3 || b.ndim !== 2 || h.shape[0] !== b.shape[0] || h.shape[1] !== b.shape[1])
    throw new ValueError(`${name} expects h [B, T, d] and boundaries [B, T]; got [${h.shape}] and [${b.shape}]`);
}

/** Fixed-size pooling (the Hourglass baseline): b_t = 1 where t ≡ 0 (mod k), positions counted from `offset`. */
export function fixedBoundaries(B: number, T: number, k: number, offset = 0): Float32Array {
  if (!Number.isInteger(k) || k < 1) throw new ValueError(`fixedBoundaries: k must be a positive integer; got ${k}`);
  for (const [name, v] of [
    ['B', B],
    ['T', T],
    ['offset', offset],
  ] as const)
    if (!(Number.isInteger(v) && v >= 0))
      throw new ValueError(`fixedBoundaries: ${name} must be an integer ≥ 0; got ${v}`);
  const out = new Float32Array(B * T);
  for (let r = 0; r < B; r++) for (let t = 0; t < T; t++) out[r * T + t] = (t + offset) % k === 0 ? 1 : 0;
  return out;
}
