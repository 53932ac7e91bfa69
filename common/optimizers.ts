// Optimizers over the flat parameter vector. Arithmetic is in double precision, element by
// element in index order, so the result is bitwise reproducible. Formulas follow Keras/PyTorch.
import type { OptimizerSpec } from './job-schema.js';

export interface Optimizer {
  readonly name: string;
  /** params ← params − update(grad). `grad` has the same length as `params`. */
  step(params: Float32Array, grad: Float32Array): void;
  state(): OptimizerState;
  restore(state: OptimizerState): void;
}

export interface OptimizerState {
  name: string;
  t: number;
  slots: Record<string, Float32Array>;
}

function checkLengths(params: Float32Array, grad: Float32Array): void {
  if (params.length !== grad.length) throw new RangeError(`gradient has ${grad.length} values for ${params.length} parameters`);
}

class Sgd implements Optimizer {
  readonly name = 'sgd';
  constructor(private readonly lr: number) {}
  step(params: Float32Array, grad: Float32Array): void {
    checkLengths(params, grad);
    for (let i = 0; i < params.length; i++) params[i] = params[i]! - this.lr * grad[i]!;
  }
  state(): OptimizerState {
    return { name: this.name, t: 0, slots: {} };
  }
  restore(): void {}
}

/** Heavy-ball momentum (PyTorch form): v ← μv + g; p ← p − lr·v (Nesterov: p ← p − lr·(g + μv)). */
class Momentum implements Optimizer {
  readonly name = 'momentum';
  private velocity: Float32Array;
  constructor(
    size: number,
    private readonly lr: number,
    private readonly mu: number,
    private readonly nesterov: boolean,
  ) {
    this.velocity = new Float32Array(size);
  }
  step(params: Float32Array, grad: Float32Array): void {
    checkLengths(params, grad);
    const v = this.velocity;
    for (let i = 0; i < params.length; i++) {
      const vi = this.mu * v[i]! + grad[i]!;
      v[i] = vi;
      params[i] = params[i]! - this.lr * (this.nesterov ? grad[i]! + this.mu * vi : vi);
    }
  }
  state(): OptimizerState {
    return { name: this.name, t: 0, slots: { velocity: this.velocity.slice() } };
  }
  restore(state: OptimizerState): void {
    const v = state.slots.velocity;
    if (!v || v.length !== this.velocity.length) throw new RangeError('momentum state does not match the model');
    this.velocity = v.slice();
  }
}

/** Adam (Kingma & Ba): bias-corrected first and second moments. */
class Adam implements Optimizer {
  readonly name = 'adam';
  private m: Float32Array;
  private v: Float32Array;
  private t = 0;
  // β₁ᵗ and β₂ᵗ as running products rather than Math.pow, so they never depend on the
  // platform's pow implementation.
  private b1t = 1;
  private b2t = 1;
  constructor(
    size: number,
    private readonly lr: number,
    private readonly beta1: number,
    private readonly beta2: number,
    private readonly epsilon: number,
  ) {
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }
  step(params: Float32Array, grad: Float32Array): void {
    checkLengths(params, grad);
    this.t++;
    this.b1t *= this.beta1;
    this.b2t *= this.beta2;
    const c1 = 1 - this.b1t;
    const c2 = 1 - this.b2t;
    const { m, v, beta1, beta2, lr, epsilon } = this;
    for (let i = 0; i < params.length; i++) {
      const g = grad[i]!;
      const mi = beta1 * m[i]! + (1 - beta1) * g;
      const vi = beta2 * v[i]! + (1 - beta2) * g * g;
      m[i] = mi;
      v[i] = vi;
      params[i] = params[i]! - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + epsilon);
    }
  }
  state(): OptimizerState {
    return { name: this.name, t: this.t, slots: { m: this.m.slice(), v: this.v.slice() } };
  }
  restore(state: OptimizerState): void {
    const { m, v } = state.slots;
    if (!m || !v || m.length !== this.m.length || v.length !== this.v.length) throw new RangeError('adam state does not match the model');
    this.m = m.slice();
    this.v = v.slice();
    this.t = state.t;
    this.b1t = 1;
    this.b2t = 1;
    for (let k = 0; k < this.t; k++) {
      this.b1t *= this.beta1;
      this.b2t *= this.beta2;
    }
  }
}

export function createOptimizer(spec: OptimizerSpec, size: number): Optimizer {
  switch (spec.name) {
    case 'sgd':
      return new Sgd(spec.learningRate);
    case 'momentum':
      return new Momentum(size, spec.learningRate, spec.momentum, spec.nesterov);
    case 'adam':
      return new Adam(size, spec.learningRate, spec.beta1, spec.beta2, spec.epsilon);
  }
}
