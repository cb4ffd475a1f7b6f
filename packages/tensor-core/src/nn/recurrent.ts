// GRU and LSTM, multi-layer, bidirectional, batch-first, with torch.nn's parameter names and gate orders
// (LSTM: i, f, g, o; GRU: r, z, n with the hidden bias inside the reset product). The input projection of
// all time steps is one matmul per layer and direction, so the per-step work is one small matmul and the
// gate arithmetic: one fused cell primitive for float32 (forward and backward one kernel each), the
// elementwise composite otherwise.
import { fmtShape, ShapeError } from '../errors.js';
import { dropout } from '../ops/composite/norm.js';
import { zeros } from '../ops/creation.js';
import { cat, stack } from '../ops/movement.js';
import { gruCell, lstmCell } from '../ops/prims.js';
import { tidy } from '../runtime.js';
import type { Tensor } from '../tensor.js';
import { uniform } from './init.js';
import { Module } from './module.js';

export interface RNNOptions {
  numLayers?: number;
  bias?: boolean;
  batchFirst?: boolean;
  bidirectional?: boolean;
  dropout?: number;
}

let fusedCells = true;
/** Internal (tests, benchmarks): false runs the elementwise composite cells even for float32. */
export function setFusedCells(on: boolean): void {
  fusedCells = on;
}

interface Weights {
  wih: Tensor;
  whh: Tensor;
  bih: Tensor | null;
  bhh: Tensor | null;
}

abstract class RNNBase extends Module {
  readonly numLayers: number;
  readonly bidirectional: boolean;
  readonly batchFirst: boolean;
  readonly dropoutP: number;
  protected readonly w: Weights[][] = [];

  constructor(
    readonly inputSize: number,
    readonly hiddenSize: number,
    gates: number,
    opts: RNNOptions,
  ) {
    super();
    this.numLayers = opts.numLayers ?? 1;
    this.bidirectional = opts.bidirectional ?? false;
    this.batchFirst = opts.batchFirst ?? false;
    this.dropoutP = opts.dropout ?? 0;
    const k = 1 / Math.sqrt(hiddenSize);
    const dirs = this.bidirectional ? 2 : 1;
    for (let l = 0; l < this.numLayers; l++) {
      const inSize = l === 0 ? inputSize : hiddenSize * dirs;
      const layer: Weights[] = [];
      for (let d = 0; d < dirs; d++) {
        const sfx = `_l${l}${d === 1 ? '_reverse' : ''}`;
        layer.push({
          wih: this.registerParameter(`weight_ih${sfx}`, uniform([gates * hiddenSize, inSize], k)),
          whh: this.registerParameter(`weight_hh${sfx}`, uniform([gates * hiddenSize, hiddenSize], k)),
          bih: opts.bias === false ? null : this.registerParameter(`bias_ih${sfx}`, uniform([gates * hiddenSize], k)),
          bhh: opts.bias === false ? null : this.registerParameter(`bias_hh${sfx}`, uniform([gates * hiddenSize], k)),
        });
      }
      this.w.push(layer);
    }
  }

  protected checkInput(x: Tensor): [number, number] {
    if (x.ndim !== 3 || x.shape[2] !== this.inputSize)
      throw new ShapeError(
        `${this.constructor.name} expects ${this.batchFirst ? '[B, T, input]' : '[T, B, input]'} with input ${this.inputSize}; got ${fmtShape(x.shape)}`,
      );
    return this.batchFirst ? [x.shape[1]!, x.shape[0]!] : [x.shape[0]!, x.shape[1]!];
  }

  /** Runs every layer and direction; `cell` advances one step given the projected input. */
  protected run(
    x: Tensor,
    init: Tensor[][],
    cell: (w: Weights, xp: Tensor, state: Tensor[]) => Tensor[],
  ): { output: Tensor; final: Tensor[][] } {
    const [T] = this.checkInput(x);
    let seq = this.batchFirst ? x.transpose(0, 1) : x; // [T, B, in]
    const final: Tensor[][] = init.map(() => []);
    for (let l = 0; l < this.numLayers; l++) {
      const outs: Tensor[] = [];
      this.w[l]!.forEach((w, d) => {
        const idx = l * this.w[l]!.length + d;
        // [T, B, G·H]: the input projection for all steps at once (biases folded in where the cell allows).
        let xp = seq.matmul(w.wih.transpose(0, 1));
        const b = this.inputBias(w);
        if (b) xp = xp.add(b);
        let state = init.map((s) => s[idx]!);
        const hs: Tensor[] = new Array(T);
        for (let s = 0; s < T; s++) {
          const t = d === 1 ? T - 1 - s : s;
          state = cell(w, xp.select(0, t), state);
          hs[t] = state[0]!;
        }
        for (let i = 0; i < state.length; i++) final[i]!.push(state[i]!);
        outs.push(stack(hs, 0));
      });
      seq = outs.length === 1 ? outs[0]! : cat(outs, 2);
      if (this.dropoutP > 0 && l < this.numLayers - 1) seq = dropout(seq, this.dropoutP, this.training);
    }
    return { output: this.batchFirst ? seq.transpose(0, 1) : seq, final };
  }

  /** The bias added to the input projection once for all steps (LSTM folds in the hidden bias too). */
  protected inputBias(w: Weights): Tensor | null {
    return w.bih;
  }

  protected zerosState(B: number): Tensor {
    return zeros([this.numLayers * (this.bidirectional ? 2 : 1), B, this.hiddenSize]);
  }

  /** A given initial state must be [layers·dirs, B, H] (PyTorch's layout), or a ShapeError naming it. */
  protected checkState(name: string, s: Tensor, B: number): void {
    const want = [this.numLayers * (this.bidirectional ? 2 : 1), B, this.hiddenSize];
    if (s.ndim !== 3 || s.shape.some((v, i) => v !== want[i]))
      throw new ShapeError(`${this.constructor.name}: ${name} must be ${fmtShape(want)}; got ${fmtShape(s.shape)}`);
  }
}

export class LSTM extends RNNBase {
  constructor(inputSize: number, hiddenSize: number, opts: RNNOptions = {}) {
    super(inputSize, hiddenSize, 4, opts);
  }

  protected override inputBias(w: Weights): Tensor | null {
    return w.bih && w.bhh ? w.bih.add(w.bhh) : (w.bih ?? w.bhh);
  }

  /** x [T, B, in] (or [B, T, in] batch-first) → output [T, B, dirs·H], h and c [layers·dirs, B, H]. */
  forward(x: Tensor, hx?: { h: Tensor; c: Tensor }): { output: Tensor; h: Tensor; c: Tensor } {
    return tidy(() => {
      const [, B] = this.checkInput(x);
      if (hx) {
        this.checkState('h0', hx.h, B);
        this.checkState('c0', hx.c, B);
      }
      const h0 = hx?.h ?? this.zerosState(B);
      const c0 = hx?.c ?? this.zerosState(B);
      const n = h0.shape[0]!;
      const init = [
        Array.from({ length: n }, (_, i) => h0.select(0, i)),
        Array.from({ length: n }, (_, i) => c0.select(0, i)),
      ];
      const H = this.hiddenSize;
      const { output, final } = this.run(x, init, (w, xp, [h, c]) => {
        // Both biases are already in xp; one sigmoid over all four gate blocks (the g block is recomputed
        // with tanh) keeps the per-step op count at nine.
        const g = xp.add(h!.matmul(w.whh.transpose(0, 1)));
        if (fusedCells && g.dtype === 'float32' && c!.dtype === 'float32') {
          const hc = lstmCell(g, c!);
          return [hc.select(0, 0), hc.select(0, 1)];
        }
        const s = g.sigmoid();
        const gg = g.slice(1, 2 * H, 3 * H).tanh();
        const c2 = s
          .slice(1, H, 2 * H)
          .mul(c!)
          .add(s.slice(1, 0, H).mul(gg));
        return [s.slice(1, 3 * H, 4 * H).mul(c2.tanh()), c2];
      });
      return { output, h: stack(final[0]!, 0), c: stack(final[1]!, 0) };
    });
  }
}

export class GRU extends RNNBase {
  constructor(inputSize: number, hiddenSize: number, opts: RNNOptions = {}) {
    super(inputSize, hiddenSize, 3, opts);
  }

  /** x [T, B, in] (or [B, T, in] batch-first) → output [T, B, dirs·H], h [layers·dirs, B, H]. */
  forward(x: Tensor, h0?: Tensor): { output: Tensor; h: Tensor } {
    return tidy(() => {
      const [, B] = this.checkInput(x);
      if (h0) this.checkState('h0', h0, B);
      const h = h0 ?? this.zerosState(B);
      const init = [Array.from({ length: h.shape[0]! }, (_, i) => h.select(0, i))];
      const H = this.hiddenSize;
      const { output, final } = this.run(x, init, (w, xp, [hp]) => {
        let hh = hp!.matmul(w.whh.transpose(0, 1));
        if (w.bhh) hh = hh.add(w.bhh);
        if (fusedCells && xp.dtype === 'float32' && hh.dtype === 'float32' && hp!.dtype === 'float32')
          return [gruCell(xp, hh, hp!)];
        const rz = xp
          .slice(1, 0, 2 * H)
          .add(hh.slice(1, 0, 2 * H))
          .sigmoid();
        const nn = xp
          .slice(1, 2 * H, 3 * H)
          .add(rz.slice(1, 0, H).mul(hh.slice(1, 2 * H, 3 * H)))
          .tanh();
        // h' = (1 − z)·n + z·h
        return [nn.add(rz.slice(1, H, 2 * H).mul(hp!.sub(nn)))];
      });
      return { output, h: stack(final[0]!, 0) };
    });
  }
}
