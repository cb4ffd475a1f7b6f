// Reverse-mode autograd: every differentiable op attaches a node (its inputs and a vector-Jacobian
// product); backward() sorts the graph topologically and runs the VJPs in reverse, accumulating into
// leaves' `.grad`. No global tape: the graph lives on the tensors, as in micrograd and candle.
import { AutogradError, fmtShape, ShapeError } from './errors.js';
import type { Tensor } from './tensor.js';

export interface GradNode {
  readonly name: string;
  readonly inputs: readonly Tensor[];
  /** Gradients for each input (null where an input gets none), given the output's gradient. */
  readonly vjp: (g: Tensor) => readonly (Tensor | null)[];
  /** Aliases of tensors saved for the VJP, with the storage version at save time. */
  readonly saved: { t: Tensor; version: number }[];
  released: boolean;
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording the graph (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function enableGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

function topo(root: Tensor): Tensor[] {
  // Iterative DFS: graphs of long recurrences are deeper than the JS stack.
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t.gradNode?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i]!;
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order;
}

export function backward(root: Tensor, gradient: Tensor | undefined, retainGraph: boolean): void {
  if (!root.requiresGrad)
    throw new AutogradError(
      'backward: the tensor does not require grad and has no grad node; did the graph pass only through non-differentiable ops (argmax, comparisons, int casts) or was it built under noGrad?',
    );
  let g0: Tensor;
  if (gradient === undefined) {
    if (root.size !== 1)
      throw new AutogradError(
        `backward: a gradient is needed for a non-scalar output of shape ${fmtShape(root.shape)}`,
      );
    g0 = root.onesLikeInternal();
  } else {
    if (gradient.shape.length !== root.shape.length || gradient.shape.some((s, i) => s !== root.shape[i]))
      throw new ShapeError(
        `backward: gradient of shape ${fmtShape(gradient.shape)} does not match output shape ${fmtShape(root.shape)}`,
      );
    g0 = gradient.aliasInternal();
  }
  const order = topo(root);
  const grads = new Map<Tensor, Tensor>([[root, g0]]);
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i]!;
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      const node = t.gradNode;
      // A leaf takes ownership of g; a non-leaf that retains its gradient keeps a copy, since g flows on.
      if (!node) t.accumulateGrad(g);
      else if (t.retainsGrad) t.accumulateGrad(g.clone());
      if (node) {
        if (node.released)
          throw new AutogradError(
            `backward: the graph through ${node.name} was already freed by an earlier backward(); pass { retainGraph: true } to the first call`,
          );
        for (const s of node.saved) {
          s.t.assertUsable(`backward of ${node.name}`);
          if (s.t.storage.version !== s.version)
            throw new AutogradError(
              `backward: a tensor saved by ${node.name} was modified in place after it was saved (version ${s.version} → ${s.t.storage.version}); clone it before editing`,
            );
        }
        const gs = node.vjp(g);
        // Each input owns its gradient handle: a VJP may hand back `g` itself or one tensor twice.
        const handed = new Set<Tensor>([g]);
        for (let k = 0; k < node.inputs.length; k++) {
          const x = node.inputs[k]!;
          let gx = gs[k];
          if (!gx || !x.requiresGrad) {
            if (gx && !handed.has(gx) && !gs.slice(k + 1).includes(gx)) gx.disposeInternal();
            continue;
          }
          if (handed.has(gx)) gx = gx.aliasInternal();
          handed.add(gx);
          const acc = grads.get(x);
          if (acc) {
            grads.set(x, acc.add(gx));
            acc.disposeInternal();
            gx.disposeInternal();
          } else grads.set(x, gx);
        }
        if (!retainGraph) releaseNode(t);
      }
      if (node) g.disposeInternal();
    }
  } finally {
    gradEnabled = prev;
    for (const g of grads.values()) g.disposeInternal();
  }
}

function releaseNode(t: Tensor): void {
  const node = t.gradNode!;
  node.released = true;
  for (const s of node.saved) s.t.disposeInternal();
  node.saved.length = 0;
}
