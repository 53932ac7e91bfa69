#!/usr/bin/env node
// Writes examples/data/penguins/part-{0,1,2}.parquet from vega-datasets' penguins.json (Palmer
// penguins, CC0; a devDependency): the table of examples/penguins-embedding.yaml, a tabular job
// whose categorical columns (island, sex) feed Embedding layers. Columns are renamed to
// snake_case and the body mass is given in kilograms; missing values stay missing (the job
// drops those rows). Rerunning writes the same files.
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parquetWriteFile } from 'hyparquet-writer';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const rows = JSON.parse(readFileSync(path.join(root, 'node_modules', 'vega-datasets', 'data', 'penguins.json'), 'utf8'));
const out = path.join(root, 'examples', 'data', 'penguins');
mkdirSync(out, { recursive: true });

const columns = [
  ['species', 'Species', 'STRING'],
  ['island', 'Island', 'STRING'],
  ['sex', 'Sex', 'STRING'],
  ['beak_length_mm', 'Beak Length (mm)', 'DOUBLE'],
  ['beak_depth_mm', 'Beak Depth (mm)', 'DOUBLE'],
  ['flipper_length_mm', 'Flipper Length (mm)', 'DOUBLE'],
  ['body_mass_kg', 'Body Mass (g)', 'DOUBLE'],
];
const parts = 3;
const per = Math.ceil(rows.length / parts);
for (let p = 0; p < parts; p++) {
  const slice = rows.slice(p * per, (p + 1) * per);
  const columnData = columns.map(([name, from, type]) => ({
    name,
    type,
    nullable: true,
    data: slice.map((r) => (r[from] === null ? null : name === 'body_mass_kg' ? r[from] / 1000 : r[from])),
  }));
  const filename = path.join(out, `part-${p}.parquet`);
  parquetWriteFile({ filename, columnData });
  console.log(`${path.relative(root, filename)}: ${slice.length} rows`);
}
