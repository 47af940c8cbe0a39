"""Reference values for dmd-torch's CLIP score: a small ViT CLIP built by openai/CLIP's own `clip/model.py`
(run unmodified from a checkout given on the command line) with its random initialisation, and what it
computes for fixed inputs: encode_image of preprocessed images, encode_text of token ids, and the cosine
similarities. The weights are stored under the model's state-dict names (OpenAI's, as its released files
and open_clip's use them).

usage: /usr/bin/python3 scripts/make-clip-fixture.py /path/to/openai-CLIP-checkout test/fixtures/clip/clip-vit-tiny.safetensors
"""
import importlib.util
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _safetensors import write_safetensors  # noqa: E402

checkout, out = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location('clip_model', os.path.join(checkout, 'clip', 'model.py'))
clip_model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clip_model)

torch.manual_seed(0)
# ViT: 32x32 images in 8x8 patches, width 128, 2 layers; text: width 64, 2 layers (heads: width // 64, as openai's
# build_model infers them from a state dict), a 512-token vocabulary (ids 510/511 play <|startoftext|>/<|endoftext|>: the end token is the largest id,
# where CLIP pools) to keep the file small
config = dict(embed_dim=48, image_resolution=32, vision_layers=2, vision_width=128, vision_patch_size=8,
              context_length=77, vocab_size=512, transformer_width=64, transformer_heads=1, transformer_layers=2)
model = clip_model.CLIP(**config).eval()
# the biases CLIP initialises to zero, and the LayerNorm affines, get random values so that they are tested too
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith('.bias') or 'ln_' in name:
            p.add_(torch.randn_like(p) * 0.1)

images = torch.randn(3, 3, 32, 32)
# token ids as openai's tokenize() lays them out: start token, the tokens, end token, zeros
tokens = torch.zeros(3, 77, dtype=torch.int64)
for i, ids in enumerate([[320, 125, 39, 320, 368], [320, 266, 33], [89, 340, 51, 37, 129, 326]]):
    row = [510] + ids + [511]
    tokens[i, :len(row)] = torch.tensor(row)
with torch.no_grad():
    img = model.encode_image(images)
    txt = model.encode_text(tokens)
    cos = torch.nn.functional.cosine_similarity(img, txt, dim=1)

tensors = {f'weights/{k}': v for k, v in model.state_dict().items()}
tensors.update({'input/images': images, 'input/tokens': tokens, 'expected/image_features': img, 'expected/text_features': txt, 'expected/cosine': cos})
write_safetensors(out, tensors, {'config': str(config).replace("'", '"'), 'source': 'openai/CLIP clip/model.py (CLIP, VisionTransformer), random init + random biases/LayerNorm affines'})
print(f'wrote {out}: image features {tuple(img.shape)}, text features {tuple(txt.shape)}, cosine {cos.tolist()}')
