"""How the encoder's ``nn.Linear`` layers multiply at inference on the CPU.

At query time most matrix products have few rows (a 10-token query; one [CLS] row per candidate),
and PyTorch's default CPU ``F.linear`` is then bound by reading the weight as stored. Two faster
kernels are used instead, selected by :data:`QUANTIZATIONS`:

* ``"none"``: oneDNN's blocked ("packed") fp32 weight layout, 2-3x faster than ``F.linear`` for
  small row counts and about 2x for large ones on AVX-512 CPUs. The arithmetic is fp32 as before;
  only the summation order differs (scores agree to about 1e-6).
* ``"int8"``: dynamic int8 quantisation (fbgemm): weights int8 per output channel, activations
  quantised per call. Faster again, and it changes scores, so it is an explicit choice recorded in
  the ranker's config and in every cache built with it.
* ``"int8-except-ffn-output"``: the same, except that each layer's feed-forward output projection
  stays fp32. Its input, the GELU activations, carries the few very large values that one
  per-tensor int8 scale clips or rounds away (Bondarenko et al., 2021, "Understanding and
  Overcoming the Challenges of Efficient Transformer Quantization"); on DL19 it raises the
  zero-shot twin's Kendall tau against fp32 at L = 0 from 0.910 to 0.939, with a third of the
  Linear work left in fp32 at about int8's speed.

The fast kernels run only when nothing needs gradients and the input is fp32 on the CPU; training,
other devices and other dtypes take ``F.linear`` on the parameters as usual. The packed copy
follows its weight: it is rebuilt whenever the weight's storage or in-place version counter
changes, so an optimizer step or ``load_state_dict`` never leaves a stale copy behind. Modules keep
their class's parameters and state dict, so saving, loading and fingerprints are unchanged.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from lateint.errors import ConfigError

#: Inference arithmetic of the Linear layers (``RankerConfig.quantization``).
QUANTIZATIONS = ("none", "int8", "int8-except-ffn-output")

# Row-count hint oneDNN packs the weight for; the packed layout serves every row count, and
# 64 measured as fast as the exact count from 10 rows up.
_PACK_ROWS_HINT = 64


@functools.lru_cache(maxsize=None)
def packed_fp32_available() -> bool:
    """Whether this torch build can multiply with oneDNN-packed fp32 weights."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        w = torch.ones(4, 4)
        packed = torch.ops.mkldnn._reorder_linear_weight(w, _PACK_ROWS_HINT)
        out = torch.ops.mkldnn._linear_pointwise(torch.ones(2, 4), packed, None, "none", [], "")
        return bool(torch.allclose(out, torch.full((2, 4), 4.0)))
    except (RuntimeError, AttributeError):
        return False


@functools.lru_cache(maxsize=None)
def int8_available() -> bool:
    """Whether this torch build has the dynamic int8 linear kernel (fbgemm)."""
    return "fbgemm" in torch.backends.quantized.supported_engines


@functools.lru_cache(maxsize=None)
def _activations_need_reduced_range() -> bool:
    # Without VNNI, fbgemm's u8 x s8 products are summed in saturating int16 pairs; 7-bit
    # activations avoid the overflow there. VNNI sums into int32 and keeps the full 8 bits.
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return True
    return "avx512_vnni" not in flags and "avx_vnni" not in flags


def row_bucket(rows: int) -> int:
    """The row count a packed fp32 product of ``rows`` rows is padded to: ``rows`` itself up to 64,
    then the next multiple of an eighth of its power of two (at most 1/8 = 12.5% extra rows; about
    eight sizes per doubling)."""
    if rows <= 64:
        return rows
    step = 1 << max(3, rows.bit_length() - 4)
    return -(-rows // step) * step


def _pack_int8(weight: torch.Tensor, bias: torch.Tensor | None):
    w = weight.detach().float()
    scales = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
    zeros = torch.zeros(w.shape[0], dtype=torch.long)
    with warnings.catch_warnings():  # quantized tensor constructors warn of a future API move
        warnings.simplefilter("ignore")
        qweight = torch.quantize_per_channel(w, scales, zeros, 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(qweight, None if bias is None else bias.detach().float())


class FastLinear(nn.Linear):
    """An ``nn.Linear`` that multiplies with a packed (fp32) or int8 copy of its weight at
    inference on the CPU. Made by :func:`use_fast_linears`, never constructed directly."""

    #: The kernel: ``"none"`` (packed fp32) or ``"int8"``.
    quantization: str = "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type != "cpu" or x.dtype != torch.float32 or self.weight.dtype != torch.float32
                or (torch.is_grad_enabled() and (self.weight.requires_grad or x.requires_grad))):
            return F.linear(x, self.weight, self.bias)
        packed = self._packed()
        if self.quantization == "int8":
            return torch.ops.quantized.linear_dynamic(x, packed, _activations_need_reduced_range())
        if packed is None:
            return F.linear(x, self.weight, self.bias)
        rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
        bucket = row_bucket(rows)
        if bucket == rows:
            return torch.ops.mkldnn._linear_pointwise(x, packed, self.bias, "none", [], "")
        # oneDNN keeps memory for every row count it has multiplied (the primitive cache off or
        # not): re-ranking, whose row counts follow the candidates' lengths, grew without bound.
        # Padding the rows to a few bucket sizes bounds that memory; rows are independent, so the
        # padding changes no result.
        flat = x.reshape(rows, x.shape[-1])
        padded = torch.cat([flat, flat.new_zeros(bucket - rows, flat.shape[1])])
        out = torch.ops.mkldnn._linear_pointwise(padded, packed, self.bias, "none", [], "")
        return out[:rows].reshape(*x.shape[:-1], out.shape[-1])

    def _packed(self):
        w, b = self.weight, self.bias
        key = (self.quantization, w.data_ptr(), w._version, None if b is None else (b.data_ptr(), b._version))
        cached = self.__dict__.get("_packed_copy")
        if cached is not None and cached[0] == key:
            return cached[1]
        if self.quantization == "int8":
            packed = _pack_int8(w, b)
        elif packed_fp32_available():
            packed = torch.ops.mkldnn._reorder_linear_weight(w.detach(), _PACK_ROWS_HINT)
        else:
            packed = None
        self.__dict__["_packed_copy"] = (key, packed)
        return packed

    def __getstate__(self):
        # The packed copy is derived data (and oneDNN/fbgemm objects do not pickle).
        state = dict(super().__getstate__())
        state.pop("_packed_copy", None)
        return state


def use_fast_linears(module: nn.Module, quantization: str = "none", ffn_outputs: Iterable[nn.Module] = ()) -> None:
    """Give every ``nn.Linear`` inside ``module`` the inference kernel for ``quantization``.

    The modules keep their parameters, names and state dicts; only how they multiply at CPU
    inference changes. ``ffn_outputs``: the layers' feed-forward output projections, which
    ``int8-except-ffn-output`` keeps in fp32.

    Raises:
        ConfigError: ``quantization`` is not one of :data:`QUANTIZATIONS`, or int8 is asked for on a
            torch build without the kernel.
    """
    if quantization not in QUANTIZATIONS:
        raise ConfigError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}.")
    if quantization != "none" and not int8_available():
        raise ConfigError(f"quantization={quantization!r} needs torch's fbgemm int8 kernels, which this torch build "
                          "lacks; use quantization='none'.")
    kept_fp32 = {id(m) for m in ffn_outputs} if quantization == "int8-except-ffn-output" else set()
    for sub in module.modules():
        kernel = "none" if quantization == "none" or id(sub) in kept_fp32 else "int8"
        if type(sub) is nn.Linear or (type(sub) is FastLinear and sub.quantization != kernel):
            sub.__class__ = FastLinear
            sub.quantization = kernel
            sub.__dict__.pop("_packed_copy", None)
