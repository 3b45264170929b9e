#!/usr/bin/env python3
"""Reference fixtures for the burn port of Segment Anything (src/sam/).

Builds the reference modules of PyPI's `segment-anything` 1.0 directly
(ImageEncoderViT, PromptEncoder, MaskDecoder, TwoWayTransformer) with a fixed
seed, perturbs every tensor the reference initialises to a constant (pos_embed,
rel_pos, LayerNorm weights and biases, ...) so that a port which ignores them
cannot pass, and writes for each case:

  <name>.pth                 the state dict, as `torch.save` writes it (official layout)
  <name>.weights.safetensors the same tensors as safetensors
  <name>.io.safetensors      inputs and the reference outputs
  <name>.json                the configuration (read by the Rust tests)

Default: the small cases under tests/fixtures/sam/.
`--full vit_b --size 256|1024`: a full-size ViT-B with random weights under
scratch/sam_full_<size>/ (too large to commit); the weights are always made in
the official 1024 layout and resampled exactly as the Rust loader does when the
size differs.

Run from the repository root: python3 scripts/reference/make_sam_fixtures.py
"""

import argparse
import json
import os
from functools import partial

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

PATCH = 16


def build(cfg, image_size):
    """A reference `Sam` from its parts, for `cfg` at input size `image_size`."""
    grid = image_size // PATCH
    dim = cfg["prompt_embed_dim"]
    encoder = ImageEncoderViT(
        depth=cfg["encoder_depth"],
        embed_dim=cfg["encoder_embed_dim"],
        img_size=image_size,
        mlp_ratio=4,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        num_heads=cfg["encoder_num_heads"],
        patch_size=PATCH,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=cfg["encoder_global_attn_indexes"],
        window_size=cfg["window_size"],
        out_chans=dim,
    )
    prompt = PromptEncoder(
        embed_dim=dim,
        image_embedding_size=(grid, grid),
        input_image_size=(image_size, image_size),
        mask_in_chans=cfg["mask_in_chans"],
    )
    decoder = MaskDecoder(
        num_multimask_outputs=cfg["num_multimask_outputs"],
        transformer=TwoWayTransformer(
            depth=cfg["decoder_depth"],
            embedding_dim=dim,
            mlp_dim=cfg["decoder_mlp_dim"],
            num_heads=cfg["decoder_num_heads"],
        ),
        transformer_dim=dim,
        iou_head_depth=cfg["iou_head_depth"],
        iou_head_hidden_dim=cfg["iou_head_hidden_dim"],
    )
    return Sam(encoder, prompt, decoder).eval()


def perturb(model, gen):
    """Add noise to every tensor that starts out constant (zeros or ones)."""
    with torch.no_grad():
        for name, t in list(model.state_dict().items()):
            if t.numel() > 1 and bool((t == t.flatten()[0]).all()):
                t.add_(0.2 * torch.randn(t.shape, generator=gen))


def resample_state_dict(sd, cfg, image_size):
    """Resample pos_embed (bicubic) and global rel_pos (linear) to `image_size`."""
    grid = image_size // PATCH
    out = dict(sd)
    pe = sd["image_encoder.pos_embed"]  # [1, H, W, C]
    if pe.shape[1] != grid:
        out["image_encoder.pos_embed"] = F.interpolate(
            pe.permute(0, 3, 1, 2),
            size=(grid, grid),
            mode="bicubic",
            align_corners=False,
            antialias=False,
        ).permute(0, 2, 3, 1).contiguous()
    for i in cfg["encoder_global_attn_indexes"]:
        for axis in ("h", "w"):
            key = f"image_encoder.blocks.{i}.attn.rel_pos_{axis}"
            rp = sd[key]  # [L, head_dim]
            length = 2 * grid - 1
            if rp.shape[0] != length:
                out[key] = F.interpolate(
                    rp.t().unsqueeze(0), size=length, mode="linear", align_corners=False
                )[0].t().contiguous()
    return out


def save(folder, name, cfg, image_size, state_dict, io):
    os.makedirs(folder, exist_ok=True)
    state_dict = {k: v.contiguous() for k, v in state_dict.items()}
    torch.save(state_dict, os.path.join(folder, f"{name}.pth"))
    save_file(state_dict, os.path.join(folder, f"{name}.weights.safetensors"))
    save_file(
        {k: v.contiguous().float() for k, v in io.items()},
        os.path.join(folder, f"{name}.io.safetensors"),
    )
    with open(os.path.join(folder, f"{name}.json"), "w") as f:
        json.dump({**cfg, "image_size": image_size}, f, indent=1, sort_keys=True)


@torch.no_grad()
def run_cases(model, gen, image_size, batch, full=False):
    """Inputs and reference outputs: image embedding, then each prompt case."""
    io = {}
    grid = image_size // PATCH
    x = torch.randn((batch, 3, image_size, image_size), generator=gen)
    io["image"] = x
    emb = model.image_encoder(x)
    io["embedding"] = emb
    pe = model.prompt_encoder.get_dense_pe()
    io["dense_pe"] = pe

    # Tokens after patch_embed (+ pos_embed) and after the first block: the
    # pieces the adapter code runs one by one.
    tokens = model.image_encoder.patch_embed(x) + model.image_encoder.pos_embed
    io["patch_embed"] = tokens
    io["block0"] = model.image_encoder.blocks[0](tokens)

    s = float(image_size)
    cases = {
        # No prompt, one prompt set broadcast over the batch of images.
        "none": dict(points=None, boxes=None, masks=None, image=None),
        # Points with labels 1, 0 and -1 (padding); a second prompt set.
        "points": dict(
            points=(
                torch.rand((2, 3, 2), generator=gen) * s,
                torch.tensor([[1.0, 0.0, -1.0], [1.0, 1.0, 0.0]]),
            ),
            boxes=None,
            masks=None,
            image=0,
        ),
        # Two boxes.
        "boxes": dict(
            points=None,
            boxes=torch.tensor([[0.1, 0.2, 0.6, 0.7], [0.3, 0.05, 0.9, 0.5]]) * s,
            masks=None,
            image=1,
        ),
        # Points and a box together (no padding point then).
        "points_boxes": dict(
            points=(torch.rand((1, 2, 2), generator=gen) * s, torch.tensor([[1.0, 0.0]])),
            boxes=torch.tensor([[0.2, 0.1, 0.8, 0.9]]) * s,
            masks=None,
            image=0,
        ),
        # A mask prompt with one point.
        "mask": dict(
            points=(torch.rand((1, 1, 2), generator=gen) * s, torch.tensor([[1.0]])),
            boxes=None,
            masks=torch.randn((1, 1, 4 * grid, 4 * grid), generator=gen),
            image=1,
        ),
    }
    if full:
        cases = {k: cases[k] for k in ("none", "points", "boxes")}
    for name, c in cases.items():
        sparse, dense = model.prompt_encoder(c["points"], c["boxes"], c["masks"])
        io[f"{name}.sparse"] = sparse
        io[f"{name}.dense"] = dense
        if c["points"] is not None:
            io[f"{name}.point_coords"] = c["points"][0]
            io[f"{name}.point_labels"] = c["points"][1]
        if c["boxes"] is not None:
            io[f"{name}.boxes"] = c["boxes"]
        if c["masks"] is not None:
            io[f"{name}.masks"] = c["masks"]
        index = None if c["image"] is None else min(c["image"], batch - 1)
        img = emb if index is None else emb[index : index + 1]
        io[f"{name}.image_index"] = torch.tensor([-1.0 if index is None else index])
        for multi in (False, True):
            masks, iou = model.mask_decoder(img, pe, sparse, dense, multimask_output=multi)
            tag = "multi" if multi else "single"
            io[f"{name}.{tag}.low_res_masks"] = masks
            io[f"{name}.{tag}.iou_predictions"] = iou
    return io


@torch.no_grad()
def postprocess_case(model, gen, image_size):
    """Sam.preprocess and Sam.postprocess_masks on an odd-sized image."""
    io = {}
    h, w = 37, 50
    from segment_anything.utils.transforms import ResizeLongestSide

    new_h, new_w = ResizeLongestSide.get_preprocess_shape(h, w, image_size)
    pixels = torch.randint(0, 256, (3, new_h, new_w), generator=gen).float()
    io["pre.pixels"] = pixels
    io["pre.input"] = model.preprocess(pixels)
    low = torch.randn((2, 3, 4 * (image_size // PATCH), 4 * (image_size // PATCH)), generator=gen)
    io["post.low_res_masks"] = low
    io["post.masks"] = model.postprocess_masks(low, (new_h, new_w), (h, w))
    io["post.sizes"] = torch.tensor([h, w, new_h, new_w]).float()
    return io


TINY = dict(
    prompt_embed_dim=16,
    mask_in_chans=8,
    num_multimask_outputs=3,
    decoder_depth=2,
    decoder_mlp_dim=32,
    decoder_num_heads=2,
    iou_head_depth=3,
    iou_head_hidden_dim=16,
    encoder_embed_dim=16,
    encoder_num_heads=2,
)

CONFIGS = {
    # 96 / 16 = 6 tokens a side, window 4: windows are padded to 8x8.
    "tiny_pad": dict(
        TINY, encoder_depth=3, encoder_global_attn_indexes=[1], window_size=4
    ),
    # 128 / 16 = 8 tokens a side, window 4: no padding.
    "tiny_nopad": dict(
        TINY, encoder_depth=2, encoder_global_attn_indexes=[1], window_size=4
    ),
    "vit_b": dict(
        prompt_embed_dim=256,
        mask_in_chans=16,
        num_multimask_outputs=3,
        decoder_depth=2,
        decoder_mlp_dim=2048,
        decoder_num_heads=8,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
        encoder_embed_dim=768,
        encoder_num_heads=12,
        encoder_depth=12,
        encoder_global_attn_indexes=[2, 5, 8, 11],
        window_size=14,
    ),
}


def make(folder, name, cfg, trained_size, image_size, seed, batch, full=False, post=False):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    trained = build(cfg, trained_size)
    perturb(trained, gen)
    sd = trained.state_dict()
    model = trained
    if image_size != trained_size:
        model = build(cfg, image_size)
        model.load_state_dict(resample_state_dict(sd, cfg, image_size))
    io = run_cases(model, gen, image_size, batch, full)
    if post:
        io.update(postprocess_case(model, gen, image_size))
    save(folder, name, cfg, image_size, sd, io)
    print(f"{folder}/{name}: trained at {trained_size}, run at {image_size}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--full", choices=["vit_b"], help="write a full-size model to scratch/")
    p.add_argument("--size", type=int, default=1024, help="input size with --full")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    torch.set_num_threads(2)
    if a.full:
        out = a.out or f"scratch/sam_full_{a.size}"
        make(out, a.full, CONFIGS[a.full], 1024, a.size, seed=7, batch=2, full=True, post=True)
        return
    out = a.out or "tests/fixtures/sam"
    make(out, "tiny_pad", CONFIGS["tiny_pad"], 96, 96, seed=1, batch=2, post=True)
    make(out, "tiny_nopad", CONFIGS["tiny_nopad"], 128, 128, seed=2, batch=1)
    # Weights made at 128 (8x8 tokens), run at 80 (5x5 tokens, padded windows).
    make(out, "tiny_resample", CONFIGS["tiny_nopad"], 128, 80, seed=3, batch=1)


if __name__ == "__main__":
    main()
