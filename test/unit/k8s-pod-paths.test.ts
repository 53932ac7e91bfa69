// Where a job's files are in the pods `mtl k8s render` describes, and which references are
// refused before anything is rendered (cli/k8s/pod-paths.ts).
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { loadJobFile } from '../../common/job-spec.js';
import { IMAGE_EXAMPLES, jobFileRefs, parseDataVolume, podJobLocation, podPathProblems } from '../../cli/k8s/pod-paths.js';
import { CACHE_MOUNT, RenderOptionsError, binaryQuantityBytes, renderObjects, validateObjects } from '../../cli/k8s/render.js';
import { EXAMPLES } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';

const csvTask = (p: string, extra = '') => `{ loss: meanSquaredError, data: { dataset: csv, path: ${p}, features: [a], target: b${extra} } }`;

function jobFile(dir: string, tasks: Record<string, string>): string {
  const file = path.join(dir, 'job.yaml');
  const taskLines = Object.entries(tasks).map(([t, spec]) => `  ${t}: ${spec}`);
  const heads = Object.keys(tasks).map((t) => `    ${t}: [ { dense: { units: 1 } } ]`);
  writeFileSync(file, ['name: pods', 'model:', '  trunk: [ { dense: { units: 4 } } ]', '  heads:', ...heads, 'tasks:', ...taskLines, 'training: { steps: 1, batchSize: 4, optimizer: { name: sgd, learningRate: 0.1 } }', ''].join('\n'));
  return file;
}

void describe('k8s pod paths', () => {
  void it('lists the file options of every dataset kind and of the model, with their job paths', () => {
    const refs = jobFileRefs({
      model: { layersModel: 'm/model.json', module: undefined } as never,
      tasks: {
        t: { data: { dataset: 'csv', path: 'a.csv', test: 'b.csv' } },
        n: { data: { dataset: 'npy', inputs: 'x.npy', target: 'y.npy', test: { inputs: 'tx.npy', target: 'ty.npy' } } },
        z: { data: { dataset: 'npz', path: 'd.npz', inputs: 'x', target: 'y' } },
        i: { data: { dataset: 'images', path: 'imgs', labels: 'labels.csv' } },
        f: { data: { dataset: 'images', path: 'more', labels: 'from-folders' } },
        s: { data: { dataset: 'synthetic' } },
      } as never,
    });
    assert.deepEqual(
      refs.map((r) => `${r.where}=${r.value}`),
      [
        'model.layersModel=m/model.json',
        'tasks.t.data.path=a.csv',
        'tasks.t.data.test=b.csv',
        'tasks.n.data.inputs=x.npy',
        'tasks.n.data.target=y.npy',
        'tasks.n.data.test.inputs=tx.npy',
        'tasks.n.data.test.target=ty.npy',
        'tasks.z.data.path=d.npz',
        'tasks.i.data.path=imgs',
        'tasks.i.data.labels=labels.csv',
        'tasks.f.data.path=more',
      ],
    );
  });

  void it("puts a job of the package's examples at its own place in the image, and finds the files shipped next to it", () => {
    const file = path.join(EXAMPLES, 'seattle-weather.yaml');
    const location = podJobLocation(file);
    assert.deepEqual(location, { jobPath: `${IMAGE_EXAMPLES}/seattle-weather.yaml`, inImage: true });
    const refs = jobFileRefs(loadJobFile(file).spec);
    assert.ok(refs.length > 0);
    assert.deepEqual(podPathProblems(refs, file, location, undefined), []);
    // The globbed Parquet parts and the image folder of other examples too.
    for (const name of ['penguins-embedding.yaml', 'mnist-png.yaml']) {
      const f = path.join(EXAMPLES, name);
      assert.deepEqual(podPathProblems(jobFileRefs(loadJobFile(f).spec), f, podJobLocation(f), undefined), [], name);
    }
    // A file the image does not ship is named.
    const missing = podPathProblems([{ where: 'tasks.x.data.path', value: 'data/nothing-here.csv' }], file, location, undefined);
    assert.equal(missing.length, 1);
    assert.match(missing[0]!, /^tasks\.x\.data\.path: data\/nothing-here\.csv is not among the files the image ships/);
  });

  void it('refuses relative and absolute paths outside the data volume, naming the task, the path and the ways that work', () => {
    const dir = tempDir('mtl-pod-paths-');
    const file = jobFile(dir, { near: csvTask('train.csv'), far: csvTask('/srv/data/train.csv'), remote: csvTask('nats://weather/w.csv'), web: csvTask('https://example.com/w.csv') });
    writeFileSync(path.join(dir, 'train.csv'), 'a,b\n1,2\n');
    const location = podJobLocation(file);
    assert.deepEqual(location, { jobPath: '/etc/mtl/job.yaml', inImage: false });
    const refs = jobFileRefs(loadJobFile(file).spec);
    const problems = podPathProblems(refs, file, location, undefined);
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems[0]!, /^tasks\.near\.data\.path: train\.csv would be \/etc\/mtl\/train\.csv in the pods, where nothing puts it: .*mtl data put .*nats:\/\/NAME.*--data-volume PVC\[:MOUNT\].*http\(s\)/);
    assert.match(problems[1]!, /^tasks\.far\.data\.path: \/srv\/data\/train\.csv would be \/srv\/data\/train\.csv in the pods/);
    // On a volume mounted at /srv/data, the absolute path works; the relative one still does not.
    const onVolume = podPathProblems(refs, file, location, { claim: 'datasets', mount: '/srv/data' });
    assert.equal(onVolume.length, 1);
    assert.match(onVolume[0]!, /^tasks\.near\.data\.path: .*give its absolute path under the data volume's mount \/srv\/data/);
    // A glob's fixed folder decides.
    assert.deepEqual(podPathProblems([{ where: 'tasks.g.data.path', value: '/srv/data/parts/*.parquet' }], file, location, { claim: 'd', mount: '/srv/data' }), []);
    assert.equal(podPathProblems([{ where: 'tasks.g.data.path', value: '/srv/database/*.parquet' }], file, location, { claim: 'd', mount: '/srv/data' }).length, 1, '/srv/database is not under /srv/data');
  });

  void it('a job copied out of the examples is not in the image', () => {
    const dir = tempDir('mtl-pod-paths-');
    mkdirSync(path.join(dir, 'data'));
    const file = path.join(dir, 'seattle-weather.yaml');
    writeFileSync(file, 'name: x\n');
    assert.deepEqual(podJobLocation(file, EXAMPLES), { jobPath: '/etc/mtl/job.yaml', inImage: false });
  });

  void it('parses --data-volume PVC[:MOUNT] and refuses what cannot be mounted', () => {
    assert.deepEqual(parseDataVolume('datasets'), { claim: 'datasets', mount: '/mnt/data' });
    assert.deepEqual(parseDataVolume('team-data:/srv/data'), { claim: 'team-data', mount: '/srv/data' });
    for (const bad of ['Upper', 'x:relative', 'x:/', 'x:/a/../b', ':/srv']) assert.equal(typeof parseDataVolume(bad), 'string', bad);
  });
});

void describe('k8s render: data volume and cache', () => {
  const render = (over: Parameters<typeof renderObjects>[0] extends infer O ? Partial<O> : never) =>
    renderObjects({ jobText: 'name: x\n', workers: 2, image: 'reg/mtl:1', format: 'plain', ...over });
  const pods = (objects: ReturnType<typeof renderObjects>) =>
    objects.filter((o): o is Job => o instanceof Job).map((j) => ({ name: j.metadata!.name!, pod: j.spec!.template.spec! }));

  void it('gives every mtl pod a bounded data cache, workers the NATS server of nats:// data, and mounts the data volume read-only', () => {
    const objects = render({ dataVolume: { claim: 'datasets', mount: '/srv/data' }, dataCacheSize: '20Gi', jobPath: `${IMAGE_EXAMPLES}/seattle-weather.yaml` });
    validateObjects(objects);
    for (const { name, pod } of pods(objects)) {
      const c = pod.containers[0]!;
      const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
      assert.equal(env.MTL_CACHE_DIR, CACHE_MOUNT, name);
      assert.equal(Number(env.MTL_CACHE_MAX_BYTES), Math.floor(20 * 2 ** 30 * 0.9), name);
      if (name.endsWith('-workers')) assert.equal(env.MTL_DATA_NATS, 'nats://mtl-nats:4222');
      assert.deepEqual(pod.volumes?.find((v) => v.name === 'data-cache')?.emptyDir, { sizeLimit: '20Gi' }, name);
      assert.deepEqual(pod.volumes?.find((v) => v.name === 'job-data')?.persistentVolumeClaim, { claimName: 'datasets', readOnly: true }, name);
      assert.deepEqual(c.volumeMounts?.find((m) => m.name === 'job-data'), { name: 'job-data', mountPath: '/srv/data', readOnly: true }, name);
      // An example job is mounted over the image's copy, so its relative paths find the image's data.
      assert.deepEqual(c.volumeMounts?.find((m) => m.name === 'job'), { name: 'job', mountPath: `${IMAGE_EXAMPLES}/seattle-weather.yaml`, subPath: 'job.yaml', readOnly: true }, name);
    }
    const coordinator = pods(objects).find((p) => p.name === 'mtl-coordinator')!.pod.containers[0]!;
    assert.equal(coordinator.args?.[1], `${IMAGE_EXAMPLES}/seattle-weather.yaml`);
  });

  void it('refuses a cache size it cannot bound and a data mount over the paths the pods use', () => {
    assert.equal(binaryQuantityBytes('512Mi'), 512 * 2 ** 20);
    for (const q of ['10G', '1.5Gi', '0Gi', 'lots']) {
      assert.equal(binaryQuantityBytes(q), undefined, q);
      assert.throws(() => render({ dataCacheSize: q }), RenderOptionsError);
    }
    for (const mount of ['/tmp', '/etc/mtl', '/var/lib/mtl', '/app/examples', CACHE_MOUNT]) {
      assert.throws(() => render({ dataVolume: { claim: 'd', mount } }), /overlaps/, mount);
    }
  });
});
