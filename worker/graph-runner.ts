// A model of the user's as a worker runs it (the graph path, common/model-graph.ts): the
// composed tfjs-layers model rebuilt from the coordinator's config with the training
// substitutions, trained with tfjs autodiff. Each unit starts from the broadcast's state
// (BatchNormalization statistics) and reports the state its forward pass leaves after its
// gradient, so the coordinator can combine them in a fixed order.
import * as tf from '@tensorflow/tfjs';
import { graphTensors, modelFromGraphConfig, trainingConfig } from '../common/model-graph.js';
import { unitGradientSize, unitTensorIndices, type ParameterLayout } from '../common/parameter-layout.js';
import { withDropoutSeeds } from './graph-layers.js';
import { headActivated, metricSum, targetTensor, taskLoss, type HeadOutput } from './losses.js';
import { targetCount, type EvaluationResult, type ForwardOptions, type GradientResult, type TaskObjective, type UnitRunner } from './model-runner.js';

export class GraphRunner implements UnitRunner {
  readonly fastPath = false;
  private readonly model: tf.LayersModel;
  /** The model's variables in layout order. */
  private readonly variables: tf.LayerVariable[];
  private readonly taskModels: Map<string, tf.LayersModel>;
  /** The state part of the weights last set: every unit starts from it. */
  private state = new Float32Array(0);

  constructor(
    readonly layout: ParameterLayout,
    private readonly objectives: ReadonlyMap<string, TaskObjective>,
  ) {
    const graph = layout.graph;
    if (!graph) throw new Error('GraphRunner needs the layout of a model of the user (layout.graph)');
    this.model = modelFromGraphConfig(trainingConfig(graph));
    const { tensors } = graphTensors(this.model, graph.spec, layout.tasks);
    const byName = new Map(tensors.map((t) => [t.name, t]));
    this.variables = layout.tensors.map((t) => {
      const found = byName.get(t.name);
      if (!found || found.group !== t.group || found.shape.join(',') !== t.shape.join(',')) {
        throw new Error(`the training model's weight ${t.name} differs from the layout (${found ? `${found.group} [${found.shape.join(', ')}]` : 'absent'})`);
      }
      return found.variable;
    });
    this.taskModels = new Map(
      layout.tasks.map((task) => {
        const out = this.model.getLayer(graph.spec.outputs[task]!).output as tf.SymbolicTensor;
        return [task, tf.model({ inputs: this.model.inputs, outputs: out, name: `${task}_unit` })];
      }),
    );
  }

  setWeights(params: Float32Array): void {
    if (params.length !== this.layout.totalSize) throw new RangeError(`expected ${this.layout.totalSize} parameters, got ${params.length}`);
    tf.tidy(() => {
      // Copies: a backend may keep the array it is given, and `params` is reused for the next version.
      this.layout.tensors.forEach((t, i) => this.variables[i]!.write(tf.tensor(params.slice(t.offset, t.offset + t.size), [...t.shape])));
    });
    const { offset, size } = this.layout.state;
    this.state = params.slice(offset, offset + size);
  }

  /** Resets the state variables to the broadcast's (a unit's forward pass in training moves them). */
  private restoreState(): void {
    for (const i of this.layout.state.tensors) {
      const t = this.layout.tensors[i]!;
      const from = t.offset - this.layout.state.offset;
      this.variables[i]!.write(tf.tensor(this.state.slice(from, from + t.size), [...t.shape]));
    }
  }

  private stateValues(out: Float32Array, at: number): void {
    for (const i of this.layout.state.tensors) {
      const t = this.layout.tensors[i]!;
      out.set(this.variables[i]!.read().dataSync(), at + t.offset - this.layout.state.offset);
    }
  }

  /** The model's input tensors for a batch of flat examples: one input as is, several as consecutive slices. */
  private inputs(flat: Float32Array, n: number): tf.Tensor[] {
    const graph = this.layout.graph!;
    const width = flat.length / n;
    let from = 0;
    return graph.inputs.map((input) => {
      const size = input.shape.reduce((a, b) => a * b, 1);
      let values: Float32Array = flat;
      if (graph.inputs.length > 1) {
        values = new Float32Array(n * size);
        for (let r = 0; r < n; r++) values.set(flat.subarray(r * width + from, r * width + from + size), r * size);
      }
      from += size;
      const data = input.dtype === 'int32' ? Int32Array.from(values) : values;
      return tf.tensor(data, [n, ...input.shape], input.dtype);
    });
  }

  private output(task: string, xs: tf.Tensor[], opts: ForwardOptions): HeadOutput {
    const model = this.taskModels.get(task);
    if (!model) throw new RangeError(`unknown task ${task}`);
    const y = withDropoutSeeds(opts.training ? opts.dropoutSeed : undefined, () =>
      model.apply(xs.length === 1 ? xs[0]! : xs, { training: opts.training }),
    ) as tf.Tensor;
    const pre = (y.rank === 2 ? y : tf.reshape(y, [y.shape[0], -1])) as tf.Tensor2D;
    return { pre, activation: this.layout.graph!.outputs.get(task)!.activation };
  }

  private objective(task: string): TaskObjective {
    const o = this.objectives.get(task);
    if (!o) throw new RangeError(`unknown task ${task}`);
    return o;
  }

  gradients(task: string, inputs: Float32Array, targets: Float32Array, opts: ForwardOptions): GradientResult {
    const objective = this.objective(task);
    const n = targetCount(objective, targets);
    const indices = unitTensorIndices(this.layout, task);
    const grads = new Float32Array(unitGradientSize(this.layout, task));
    const loss = tf.tidy(() => {
      this.restoreState();
      const xs = this.inputs(inputs, n);
      const y = targetTensor(targets, objective.targetWidth);
      const vars = indices.map((i) => this.variables[i]!.read() as tf.Variable);
      const { value, grads: named } = tf.variableGrads(() => taskLoss(objective.loss, this.output(task, xs, opts), y), vars);
      let at = 0;
      for (const [k, v] of vars.entries()) {
        // A shared weight this task's output does not reach (shared by other tasks) has no gradient: zero.
        const g = named[v.name];
        if (g) grads.set(g.dataSync(), at);
        at += this.layout.tensors[indices[k]!]!.size;
      }
      this.stateValues(grads, at);
      return value.dataSync()[0]!;
    });
    return { loss, grads };
  }

  sharedGradients(): GradientResult[] {
    throw new Error('a model of the user computes each unit on its own (no fast path)');
  }

  loss(task: string, inputs: Float32Array, targets: Float32Array, opts: ForwardOptions): number {
    const objective = this.objective(task);
    return tf.tidy(() => {
      this.restoreState();
      const value = taskLoss(objective.loss, this.output(task, this.inputs(inputs, targetCount(objective, targets)), opts), targetTensor(targets, objective.targetWidth)).dataSync()[0]!;
      this.restoreState();
      return value;
    });
  }

  predict(task: string, inputs: Float32Array, n: number): Float32Array {
    return tf.tidy(() => headActivated(this.output(task, this.inputs(inputs, n), { training: false })).dataSync() as Float32Array);
  }

  evaluate(task: string, inputs: Float32Array, targets: Float32Array): EvaluationResult {
    const objective = this.objective(task);
    const n = targetCount(objective, targets);
    return tf.tidy(() => {
      const y = targetTensor(targets, objective.targetWidth);
      const out = this.output(task, this.inputs(inputs, n), { training: false });
      const lossSum = taskLoss(objective.loss, out, y).dataSync()[0]! * n;
      const metricSums: Record<string, number> = {};
      for (const m of objective.metrics) metricSums[m] = metricSum(m, objective.loss, out, y).dataSync()[0]!;
      return { count: n, lossSum, metricSums };
    });
  }

  dispose(): void {
    this.model.dispose();
  }
}
