// EDM config validation: EDM's defaults per model_type, and errors that name the field.
import test from 'ava';
import { parseEDMConfig, EDMConfigError } from '../../src/edm/config.js';

test('SongUNet defaults are EDM\'s', (t) => {
  const c = parseEDMConfig({ model_type: 'SongUNet', img_resolution: 32, img_channels: 3 });
  t.is(c.model_type, 'SongUNet');
  if (c.model_type !== 'SongUNet') return;
  t.is(c.model_channels, 128);
  t.deepEqual(c.channel_mult, [1, 2, 2, 2]);
  t.is(c.num_blocks, 4);
  t.deepEqual(c.attn_resolutions, [16]);
  t.is(c.embedding_type, 'positional');
  t.deepEqual(c.resample_filter, [1, 1]);
  t.is(c.sigma_data, 0.5);
  t.is(c.dropout, 0.1);
});

test('DhariwalUNet is the default model_type, with ADM defaults', (t) => {
  const c = parseEDMConfig({ img_resolution: 64, img_channels: 3, label_dim: 1000 });
  t.is(c.model_type, 'DhariwalUNet');
  t.is(c.model_channels, 192);
  t.deepEqual(c.channel_mult, [1, 2, 3, 4]);
  t.deepEqual(c.attn_resolutions, [32, 16, 8]);
});

test('JSON text with Python\'s Infinity is accepted (sigma_max = null)', (t) => {
  const c = parseEDMConfig('{"model_type": "SongUNet", "img_resolution": 16, "img_channels": 1, "sigma_max": Infinity}');
  t.is(c.sigma_max, null);
});

const bad: [string, unknown, RegExp][] = [
  ['unknown model_type', { model_type: 'UNet2D', img_resolution: 32, img_channels: 3 }, /unknown model_type "UNet2D"/],
  ['unknown field', { model_type: 'SongUNet', img_resolution: 32, img_channels: 3, chanel_mult: [1] }, /unknown field\(s\) 'chanel_mult'/],
  ['SongUNet option on ADM', { model_type: 'DhariwalUNet', img_resolution: 32, img_channels: 3, embedding_type: 'fourier' }, /embedding_type/],
  ['non-integer channels', { model_type: 'SongUNet', img_resolution: 32, img_channels: 3, model_channels: 12.5 }, /model_channels/],
  ['missing resolution', { model_type: 'SongUNet', img_channels: 3 }, /img_resolution/],
  ['bad encoder type', { model_type: 'SongUNet', img_resolution: 32, img_channels: 3, encoder_type: 'fancy' }, /encoder_type/],
  ['resolution too small for the levels', { model_type: 'SongUNet', img_resolution: 4, img_channels: 3, channel_mult: [1, 2, 2, 2] }, /cannot be halved/],
  ['dropout out of range', { model_type: 'SongUNet', img_resolution: 32, img_channels: 3, dropout: 2 }, /dropout/],
  ['not JSON', '{model_type: SongUNet', /not valid JSON/],
  ['not an object', [1, 2], /must be a JSON object/],
];
for (const [what, input, re] of bad) {
  test(`rejects: ${what}`, (t) => {
    const e = t.throws(() => parseEDMConfig(input), { instanceOf: EDMConfigError });
    t.regex(e!.message, re);
  });
}
