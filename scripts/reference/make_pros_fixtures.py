#!/usr/bin/env python3
"""Reference fixtures for one PROS training step (src/pros/), made with PyTorch.

Builds the tiny padded-window SAM of make_sam_fixtures.py (same config, same
perturbation of constant-initialised tensors), adds bottleneck adapters
(x + up(gelu(down(x))), width/4, exact GELU) with random weights (the up
projection is NOT zero here, so every adapter tensor gets a gradient), and runs
one step exactly as PROS trains:

  synthetic pair (uint8 RGB image, 0/255 mask) -> normalise with SAM's pixel
  mean/std -> image encoder with adapters after the chosen blocks -> neck ->
  prompt-free mask decoder (no points/boxes, the no-mask dense embedding,
  optional adapters on the image stream after each two-way layer, optional
  trainable copy of the first hypernetwork MLP) -> single-mask logits ->
  bilinear (align_corners=False) to the input size -> BCE with logits (mean)
  + soft dice (sigmoid, per image, smoothing 1, mean over the batch) ->
  backward -> torch.optim.AdamW(lr=1e-4, betas=(0.9, 0.999), eps=1e-8,
  weight_decay=0.01) step.

SAM is frozen (requires_grad False). For each case it writes under
tests/fixtures/pros/:

  <case>.weights.safetensors  SAM state dict (official keys)
  <case>.io.safetensors       images and masks (f16 of 0-255 integers), adapters
                              before the step, their gradients ("grad.<name>"),
                              after the step ("after.<name>") and the loss
  <case>.json                 SAM config, image size and adapter placement

Adapter tensor names and layouts are those of PROS adapter files:
encoder.<j>.down.weight [dim/4, dim] ..., decoder.<l>..., hypernetwork.<n>...

Run from the repository root: python3 scripts/reference/make_pros_fixtures.py
"""

import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_sam_fixtures import CONFIGS, build, perturb  # noqa: E402

PIXEL_MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
PIXEL_STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)


class Adapter(torch.nn.Module):
    def __init__(self, dim, gen):
        super().__init__()
        hidden = dim // 4
        self.down = torch.nn.Linear(dim, hidden)
        self.up = torch.nn.Linear(hidden, dim)
        with torch.no_grad():
            for p in (self.down.weight, self.down.bias, self.up.weight, self.up.bias):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))

    def forward(self, x):
        return x + self.up(F.gelu(self.down(x)))


def pros_forward(sam, enc_positions, enc_adapters, dec_adapters, hyper, x):
    enc = sam.image_encoder
    t = enc.patch_embed(x) + enc.pos_embed
    for i, blk in enumerate(enc.blocks):
        t = blk(t)
        if i in enc_positions:
            t = enc_adapters[enc_positions.index(i)](t)
    emb = enc.neck(t.permute(0, 3, 1, 2))

    b, c, h, w = emb.shape
    _, dense = sam.prompt_encoder(None, None, None)
    pe = sam.prompt_encoder.get_dense_pe()
    dec = sam.mask_decoder
    tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], 0)
    tokens = tokens.unsqueeze(0).expand(b, -1, -1)
    src = emb + dense

    tr = dec.transformer
    keys = src.flatten(2).permute(0, 2, 1)
    key_pe = pe.flatten(2).permute(0, 2, 1)
    queries = tokens
    for l, layer in enumerate(tr.layers):
        queries, keys = layer(queries=queries, keys=keys, query_pe=tokens, key_pe=key_pe)
        if dec_adapters:
            keys = dec_adapters[l](keys)
    q = queries + tokens
    k = keys + key_pe
    attn_out = tr.final_attn_token_to_image(q=q, k=k, v=keys)
    queries = tr.norm_final_attn(queries + attn_out)

    src = keys.transpose(1, 2).reshape(b, c, h, w)
    up = dec.output_upscaling(src)
    _, uc, uh, uw = up.shape
    mlp = hyper if hyper is not None else dec.output_hypernetworks_mlps[0]
    hyper_in = mlp(queries[:, 1, :])
    masks = (hyper_in.unsqueeze(1) @ up.reshape(b, uc, uh * uw)).reshape(b, 1, uh, uw)
    size = x.shape[-1]
    return F.interpolate(masks, (size, size), mode="bilinear", align_corners=False)


def loss_fn(logits, target):
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum(dim=(1, 2, 3))
    total = p.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    dice = 1 - (2 * inter + 1) / (total + 1)
    return bce + dice.mean()


def named(enc_adapters, dec_adapters, hyper):
    out = {}
    for j, a in enumerate(enc_adapters):
        for part in ("down", "up"):
            out[f"encoder.{j}.{part}.weight"] = getattr(a, part).weight
            out[f"encoder.{j}.{part}.bias"] = getattr(a, part).bias
    for l, a in enumerate(dec_adapters):
        for part in ("down", "up"):
            out[f"decoder.{l}.{part}.weight"] = getattr(a, part).weight
            out[f"decoder.{l}.{part}.bias"] = getattr(a, part).bias
    if hyper is not None:
        for n, layer in enumerate(hyper.layers):
            out[f"hypernetwork.{n}.weight"] = layer.weight
            out[f"hypernetwork.{n}.bias"] = layer.bias
    return out


def make(folder, name, positions, decoder, hypernetwork, seed, batch=4):
    cfg = CONFIGS["tiny_pad"]
    size = 96
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    sam = build(cfg, size)
    perturb(sam, gen)
    for p in sam.parameters():
        p.requires_grad_(False)

    enc = [Adapter(cfg["encoder_embed_dim"], gen) for _ in positions]
    dec = [Adapter(cfg["prompt_embed_dim"], gen) for _ in range(cfg["decoder_depth"])] if decoder else []
    hyper = None
    if hypernetwork:
        import copy

        hyper = copy.deepcopy(sam.mask_decoder.output_hypernetworks_mlps[0])
        for p in hyper.parameters():
            p.requires_grad_(True)
    params = named(enc, dec, hyper)

    images = torch.randint(0, 256, (batch, 3, size, size), generator=gen).float()
    # Masks: a random rectangle per image, one image left empty.
    masks = torch.zeros((batch, 1, size, size))
    for i in range(batch - 1):
        y0, x0 = torch.randint(0, size - 20, (2,), generator=gen).tolist()
        hh, ww = torch.randint(4, 20, (2,), generator=gen).tolist()
        masks[i, 0, y0 : y0 + hh, x0 : x0 + ww] = 255.0

    io = {"images": images, "masks": masks}
    io.update({k: v.detach().clone() for k, v in params.items()})

    x = (images - PIXEL_MEAN) / PIXEL_STD
    logits = pros_forward(sam, positions, enc, dec, hyper, x)
    loss = loss_fn(logits, masks / 255.0)
    loss.backward()
    io["loss"] = loss.detach().reshape(1)
    io["logits"] = logits.detach()
    for k, v in params.items():
        io[f"grad.{k}"] = v.grad.detach().clone()

    opt = torch.optim.AdamW(
        list(params.values()), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01
    )
    opt.step()
    for k, v in params.items():
        io[f"after.{k}"] = v.detach().clone()

    os.makedirs(folder, exist_ok=True)
    sd = {k: v.contiguous() for k, v in sam.state_dict().items()}
    save_file(sd, os.path.join(folder, f"{name}.weights.safetensors"))
    # Images and masks hold integers 0-255, exact in f16; everything else is f32.
    io = {k: v.contiguous().half() if k in ("images", "masks") else v.contiguous().float() for k, v in io.items()}
    save_file(io, os.path.join(folder, f"{name}.io.safetensors"))
    meta = {
        "sam": {**cfg, "image_size": size},
        "encoder_positions": positions,
        "decoder_adapters": decoder,
        "train_hypernetwork": hypernetwork,
        "batch": batch,
        "loss": loss.item(),
    }
    with open(os.path.join(folder, f"{name}.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    print(f"{folder}/{name}: loss {loss.item():.6f}")


def time_step(k, batch=4, size=256, repeats=2):
    """Seconds per PROS training step on a random ViT-B at `size`, K adapters
    after the last K blocks (what benches/train.rs compares against)."""
    import time

    cfg = CONFIGS["vit_b"]
    gen = torch.Generator().manual_seed(0)
    sam = build(cfg, size)
    for p in sam.parameters():
        p.requires_grad_(False)
    depth = cfg["encoder_depth"]
    positions = list(range(depth - k, depth))
    enc = [Adapter(cfg["encoder_embed_dim"], gen) for _ in positions]
    params = [p for a in enc for p in a.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    x = torch.randn((batch, 3, size, size), generator=gen)
    target = (torch.rand((batch, 1, size, size), generator=gen) > 0.9).float()
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(pros_forward(sam, positions, enc, [], None, x), target)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def main():
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--time-k", type=int, help="only time one ViT-B step with K adapters; print seconds")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.time_k:
        print(f"{time_step(a.time_k):.4f}")
        return
    out = "tests/fixtures/pros"
    # K = 1 after the last block: blocks 0 and 1 are the frozen prefix.
    make(out, "step_k1", [2], decoder=False, hypernetwork=False, seed=11)
    # K = 2, decoder adapters and the hypernetwork copy: everything trainable at once.
    make(out, "step_all", [0, 2], decoder=True, hypernetwork=True, seed=12)


if __name__ == "__main__":
    main()
