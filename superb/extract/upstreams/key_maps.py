"""Parameter names of Hugging Face and fairseq/unilm checkpoints → torchaudio's ``Wav2Vec2Model``.

Written out here rather than borrowed from torchaudio: ``import_huggingface_model`` needs a live
transformers model and ``import_fairseq._convert_state_dict`` is private. Both sources keep q/k/v
projections apart; torchaudio's WavLM attention wraps ``nn.MultiheadAttention``, so ``fuse_wavlm_qkv``
concatenates them. Weight-norm parameters appear as ``weight_g``/``weight_v`` (old saves) or
``parametrizations.weight.original0/1`` (torch ≥ 2.1); both land on torchaudio's parametrization.
"""

from __future__ import annotations

import re

import torch

from superb.errors import CheckpointError

_POS = "encoder.transformer.pos_conv_embed.conv."
_G0, _G1 = _POS + "parametrizations.weight.original0", _POS + "parametrizations.weight.original1"
_TL = r"encoder.transformer.layers.\1."  # torchaudio layer i
_L = r"encoder\.layers\.(\d+)\."  # source layer i
_WB = r"(weight|bias)"
_CONV = r"feature_extractor\.conv_layers\.(\d+)\."

# (pattern on the source key, replacement); the first full match wins.
HF_RULES: list[tuple[str, str]] = [
    (_CONV + r"(conv|layer_norm)\." + _WB, r"feature_extractor.conv_layers.\1.\2.\3"),
    (r"feature_projection\.(layer_norm|projection)\." + _WB, r"encoder.feature_projection.\1.\2"),
    (r"encoder\.pos_conv_embed\.conv\.bias", _POS + "bias"),
    (r"encoder\.pos_conv_embed\.conv\.(?:weight_g|parametrizations\.weight\.original0)", _G0),
    (r"encoder\.pos_conv_embed\.conv\.(?:weight_v|parametrizations\.weight\.original1)", _G1),
    (r"encoder\.layer_norm\." + _WB, r"encoder.transformer.layer_norm.\1"),
    (_L + r"attention\.(q_proj|k_proj|v_proj|out_proj|gru_rel_pos_linear)\." + _WB, _TL + r"attention.\2.\3"),
    (_L + r"attention\.gru_rel_pos_const", _TL + "attention.gru_rel_pos_const"),
    (_L + r"attention\.rel_attn_embed\.weight", _TL + "attention.rel_attn_embed.weight"),
    (_L + r"(layer_norm|final_layer_norm|feed_forward\.intermediate_dense|feed_forward\.output_dense)\." + _WB,
     _TL + r"\2.\3"),
]
HF_BACKBONE = ("feature_extractor.", "feature_projection.", "encoder.")

FAIRSEQ_RULES: list[tuple[str, str]] = [
    (_CONV + r"0\." + _WB, r"feature_extractor.conv_layers.\1.conv.\2"),
    # group norm (first block only) is module 2; layer norm is module 1 inside Sequential 2
    (_CONV + r"2\.(?:1\.)?" + _WB, r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"post_extract_proj\." + _WB, r"encoder.feature_projection.projection.\1"),
    (r"layer_norm\." + _WB, r"encoder.feature_projection.layer_norm.\1"),
    (r"encoder\.pos_conv\.0\.bias", _POS + "bias"),
    (r"encoder\.pos_conv\.0\.(?:weight_g|parametrizations\.weight\.original0)", _G0),
    (r"encoder\.pos_conv\.0\.(?:weight_v|parametrizations\.weight\.original1)", _G1),
    (r"encoder\.layer_norm\." + _WB, r"encoder.transformer.layer_norm.\1"),
    (_L + r"self_attn\.(q_proj|k_proj|v_proj|out_proj)\." + _WB, _TL + r"attention.\2.\3"),
    (_L + r"self_attn\.grep_linear\." + _WB, _TL + r"attention.gru_rel_pos_linear.\2"),
    (_L + r"self_attn\.grep_a", _TL + "attention.gru_rel_pos_const"),
    (_L + r"self_attn\.relative_attention_bias\.weight", _TL + "attention.rel_attn_embed.weight"),
    (_L + r"self_attn_layer_norm\." + _WB, _TL + r"layer_norm.\2"),
    (_L + r"fc1\." + _WB, _TL + r"feed_forward.intermediate_dense.\2"),
    (_L + r"fc2\." + _WB, _TL + r"feed_forward.output_dense.\2"),
    (_L + r"final_layer_norm\." + _WB, _TL + r"final_layer_norm.\2"),
]
# Everything else (mask_emb, quantizer, project_q, final_proj, label_embs_concat, CTC heads) is dropped.
FAIRSEQ_BACKBONE = ("feature_extractor.", "post_extract_proj.", "layer_norm.", "encoder.")


def rename(state: dict[str, torch.Tensor], rules: list[tuple[str, str]], backbone: tuple[str, ...],
           where: str) -> dict[str, torch.Tensor]:
    """Keys under ``backbone`` renamed by ``rules``; other keys dropped; an unknown backbone key raises."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not key.startswith(backbone):
            continue
        for pattern, replacement in rules:
            match = re.fullmatch(pattern, key)  # re caches the compiled patterns
            if match:
                new = match.expand(replacement)
                break
        else:
            raise CheckpointError(f"{where}: unexpected parameter {key!r}; this architecture variant is unsupported")
        if new in out:
            raise CheckpointError(f"{where}: parameter {new!r} is given twice (as weight_g and parametrizations?)")
        out[new] = value
    return out


def fuse_wavlm_qkv(state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """Separate q/k/v projections → ``nn.MultiheadAttention``'s ``in_proj_*`` (order q, k, v)."""
    out = dict(state)
    pattern = re.compile(r"(encoder\.transformer\.layers\.\d+\.attention\.)(q_proj|k_proj|v_proj|out_proj)\." + _WB)
    prefixes = sorted({m.group(1) for k in state if (m := pattern.fullmatch(k))})
    for prefix in prefixes:
        for kind in ("weight", "bias"):
            parts = [f"{prefix}{p}_proj.{kind}" for p in "qkv"]
            missing = [p for p in parts if p not in out]
            if missing:
                raise CheckpointError(f"{where}: missing parameter {missing[0]!r}")
            out[f"{prefix}attention.in_proj_{kind}"] = torch.cat([out.pop(p) for p in parts])
            if f"{prefix}out_proj.{kind}" in out:
                out[f"{prefix}attention.out_proj.{kind}"] = out.pop(f"{prefix}out_proj.{kind}")
    return out
