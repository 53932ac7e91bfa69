// The model of examples/penguins-embedding.yaml (a model from code, docs/models.md): three
// measurements (standardised by the dataset) and two categorical columns, each a vocabulary id
// (0 for a value the train rows never had) into its own Embedding; concatenated, one shared
// Dense layer, and an output per task.
export default function build(tf) {
  const measures = tf.input({ shape: [3], name: 'measures' });
  const island = tf.input({ shape: [1], dtype: 'int32', name: 'island' });
  const sex = tf.input({ shape: [1], dtype: 'int32', name: 'sex' });
  // inputDim: the vocabulary's size + 1 (island: Biscoe, Dream, Torgersen; sex: ., FEMALE, MALE).
  const embed = (x, name) => tf.layers.flatten({ name: `${name}_flat` }).apply(tf.layers.embedding({ inputDim: 4, outputDim: 2, name: `${name}_embedding` }).apply(x));
  const h = tf.layers.concatenate({ name: 'features' }).apply([measures, embed(island, 'island'), embed(sex, 'sex')]);
  const shared = tf.layers.dense({ units: 16, activation: 'relu', name: 'shared' }).apply(h);
  const species = tf.layers.dense({ units: 3, activation: 'softmax', name: 'species' }).apply(shared);
  const mass = tf.layers.dense({ units: 1, name: 'body_mass' }).apply(shared);
  return tf.model({ inputs: [measures, island, sex], outputs: [species, mass], name: 'penguins' });
}
