#!/usr/bin/env python3
"""Writes the JPEG fixtures of test/unit/datasets-images.test.ts into test/fixtures/images/:
a small colour picture encoded by libjpeg (cjpeg, 4:2:0 chroma) as baseline and progressive
JPEG, a grey one, and libjpeg's own decoding of each (djpeg, as PPM/PGM) that the jpeg-js
decoder is compared with. The reference uses djpeg -nosmooth: chroma upsampled by replication,
as jpeg-js does (libjpeg's default 'fancy' upsampling differs by up to ~55 levels at sharp
colour edges). The files are committed; the tests need neither numpy nor libjpeg. Needs numpy and the
cjpeg/djpeg programs (Debian: libjpeg-turbo-progs). Rerun after changing this script:

    python3 scripts/make-jpeg-fixtures.py
"""
import os
import subprocess
import tempfile

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'images')
os.makedirs(OUT, exist_ok=True)
H, W = 12, 16
y, x = np.mgrid[0:H, 0:W]
# Smooth ramps plus a bright square: JPEG keeps them close to the source.
rgb = np.stack([x * 255 // (W - 1), y * 255 // (H - 1), np.full((H, W), 90)], axis=-1).astype(np.uint8)
rgb[3:7, 5:10] = [240, 240, 40]
grey = ((x * 9 + y * 11) % 256).astype(np.uint8)


def netpbm(path, image):
    magic = b'P6' if image.ndim == 3 else b'P5'
    with open(path, 'wb') as f:
        f.write(magic + f'\n{image.shape[1]} {image.shape[0]}\n255\n'.encode())
        f.write(image.tobytes())


with tempfile.TemporaryDirectory() as tmp:
    netpbm(os.path.join(tmp, 'rgb.ppm'), rgb)
    netpbm(os.path.join(tmp, 'grey.pgm'), grey)
    jobs = [
        ('rgb-baseline.jpg', 'rgb.ppm', ['-quality', '95']),
        ('rgb-progressive.jpg', 'rgb.ppm', ['-quality', '95', '-progressive']),
        ('grey.jpg', 'grey.pgm', ['-quality', '95', '-grayscale']),
    ]
    for name, source, flags in jobs:
        target = os.path.join(OUT, name)
        subprocess.run(['cjpeg', *flags, '-outfile', target, os.path.join(tmp, source)], check=True)
        reference = target[: -len('.jpg')] + ('.pgm' if source.endswith('.pgm') else '.ppm')
        subprocess.run(['djpeg', '-nosmooth', '-outfile', reference, target], check=True)
print(f'wrote {len(jobs)} JPEG fixtures and their libjpeg decodings to {os.path.relpath(OUT)}')
