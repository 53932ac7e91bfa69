#!/usr/bin/env python3
"""Writes the small .npy / .npz fixtures of test/unit/datasets-npy.test.ts into
test/fixtures/npy/, and expected.json: each array's shape and values in C order as numpy reads
them (numpy is the reference the TypeScript reader is tested against). The files are committed;
the tests read them and do not need numpy. Rerun after changing this script:

    python3 scripts/make-npy-fixtures.py
"""
import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'npy')
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(17)
expected = {}


def record(name, array):
    expected[name] = {'shape': list(array.shape), 'values': np.ascontiguousarray(array).ravel().astype(np.float64).tolist()}


def save(name, array, version=None, oracle=True):
    path = os.path.join(OUT, name)
    with open(path, 'wb') as f:
        np.lib.format.write_array(f, array, version=version, allow_pickle=False)
    if oracle:
        record(name, array)


# Every supported dtype, little- and big-endian, shape (4, 3), with the type's extremes.
for code in ['f4', 'f8', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8']:
    if code[0] == 'f':
        values = rng.normal(0, 100, size=12)
        values[0], values[1] = -3.5e30, 1.25e-30
    else:
        info = np.iinfo(np.dtype(code))
        values = rng.integers(info.min, info.max, size=12, endpoint=True, dtype=np.int64 if code != 'u8' else np.uint64)
        # Extremes, except 64-bit ones past 2^53 whose float value the JSON oracle cannot carry exactly.
        values[0] = info.min if code not in ('i8',) else -(2**53)
        values[1] = info.max if code not in ('i8', 'u8') else 2**53
    for order in ['<', '>'] if code not in ('i1', 'u1') else ['|']:
        array = np.asarray(values).astype(np.dtype(order + code)).reshape(4, 3)
        save(f"{'be' if order == '>' else 'le'}-{code}.npy", array)
save('bool.npy', np.array([[True, False, True], [False, False, True], [True, True, True], [False, True, False]]))

# Layouts and header versions.
save('fortran.npy', np.asfortranarray(np.arange(24, dtype='<f4').reshape(4, 3, 2) * 0.5 - 3))
save('fortran-be-i2.npy', np.asfortranarray(np.arange(12, dtype='>i2').reshape(3, 4) - 6))
save('vector.npy', np.array([0.5, -1.5, 2.0, 4.0], dtype='<f4'))
save('v2.npy', np.arange(6, dtype='<f8').reshape(2, 3), version=(2, 0))
save('v3.npy', np.arange(6, dtype='<i4').reshape(3, 2), version=(3, 0))

# A small classification/regression set: 10 examples of shape (2, 3).
x = (np.arange(60, dtype='<f4').reshape(10, 2, 3) / 10).astype('<f4')
save('x.npy', x)
save('y-int.npy', np.array([3, 1, 2, 3, 1, 2, 3, 10, 1, 2], dtype='<i8'))
save('y-col.npy', np.array([3, 1, 2, 3, 1, 2, 3, 10, 1, 2], dtype='>i4').reshape(10, 1))
save('y-bool.npy', np.array([True, False] * 5))
save('y-float.npy', np.linspace(-1, 1, 10).astype('<f8'))
save('y-short.npy', np.arange(9, dtype='<i4'))
save('y-matrix.npy', np.zeros((10, 2), dtype='<i4'))
save('x-test.npy', (np.arange(24, dtype='<f4').reshape(4, 2, 3) / -10).astype('<f4'))
save('y-test.npy', np.array([1, 2, 3, 4], dtype='<i8'))
save('x-nan.npy', np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]], dtype='<f4'), oracle=False)

# Unsupported arrays, for the errors.
save('strings.npy', np.array(['cat', 'dog'], dtype='<U3'), oracle=False)
save('complex.npy', np.array([1 + 2j], dtype='<c8'), oracle=False)
save('structured.npy', np.zeros(2, dtype=[('a', '<f4'), ('b', '<i4')]), oracle=False)

# Archives: stored (np.savez) and deflated (np.savez_compressed), with an explicit test split.
arrays = {'x': x, 'y': np.array([0, 1, 0, 1, 1, 0, 1, 0, 0, 1], dtype='|u1'), 'x_test': x[:3] + 1, 'y_test': np.array([1, 0, 1], dtype='|u1')}
np.savez(os.path.join(OUT, 'data.npz'), **arrays)
np.savez_compressed(os.path.join(OUT, 'data-compressed.npz'), **arrays)
for key, array in arrays.items():
    record(f'data.npz:{key}', array)

with open(os.path.join(OUT, 'expected.json'), 'w') as f:
    # One line per array, so a regenerated file diffs readably.
    lines = [f'  {json.dumps(k)}: {json.dumps(expected[k], separators=(",", ":"))}' for k in sorted(expected)]
    f.write('{\n' + ',\n'.join(lines) + '\n}\n')
print(f'wrote {len(expected)} arrays to {os.path.relpath(OUT)}')
