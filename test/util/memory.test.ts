import * as assert from 'node:assert/strict';
import * as os from 'node:os';
import { test } from 'node:test';
import { BYTES_PER_PIXEL, DECODER_MAX_PIXELS, pixelLimit, pixelLimitProblem } from '../../src/util/memory';

test('the pixel limit follows free memory, at most the decoder\'s, and CQSEG_MAX_PIXELS overrides it', () => {
  const l = pixelLimit({});
  assert.ok(l.pixels <= DECODER_MAX_PIXELS && l.pixels > 0);
  if (l.pixels < DECODER_MAX_PIXELS) assert.ok(Math.abs(l.pixels - os.freemem() / BYTES_PER_PIXEL) < 0.2 * l.pixels, l.source);
  assert.deepEqual(pixelLimit({ CQSEG_MAX_PIXELS: '1000' }), { pixels: 1000, source: 'CQSEG_MAX_PIXELS' });
  assert.throws(() => pixelLimit({ CQSEG_MAX_PIXELS: '1e3x' }), /CQSEG_MAX_PIXELS must be a positive integer/);
});

test('an image over the limit is named with its size and the limit', () => {
  const limit = { pixels: 1_000_000, source: 'CQSEG_MAX_PIXELS' };
  assert.equal(pixelLimitProblem(1000, 1000, limit), null);
  assert.equal(pixelLimitProblem(1000, 1001, limit),
    'image of 1001x1000 (WxH) = 1.0 Mpx is larger than the limit of 1.0 Mpx (CQSEG_MAX_PIXELS); downscale it (e.g. to at most 1000x1000), or free memory, or raise CQSEG_MAX_PIXELS');
});
