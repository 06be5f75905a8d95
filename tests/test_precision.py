"""One ``dtype`` setting: its values, what ``auto`` picks on given CPU flags, and where it is recorded
and enforced (ranker config, cache manifest, cache check, configs, command line)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from lateint import SplitRanker
from lateint.cache.doc_cache import DocCache
from lateint.cache.manifest import MANIFEST_FILE
from lateint.cli.main import main
from lateint.config import RankerConfig
from lateint.errors import CacheMismatchError, ConfigError
from lateint.precision import DTYPES, auto_dtype, read_cpu_flags, resolve_dtype

DOCS = [("d1", "A lobster roll is a sandwich of lobster meat."), ("d2", "Lobsters are crustaceans."),
        ("d3", "Boston is a city in Massachusetts.")]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return str(tiny_model("bert", 2))


def test_the_values():
    assert DTYPES == ("fp32", "bf16", "fp16", "auto")


@pytest.mark.parametrize("device,flags,expected", [
    ("cpu", {"fpu", "avx2", "avx512f", "amx_bf16", "amx_tile"}, "bf16"),            # Sapphire Rapids
    ("cpu", {"fpu", "avx2", "avx512f", "avx512_bf16", "avx512_vnni"}, "bf16"),       # Cooper Lake, Zen 4
    ("cpu", {"fpu", "avx2", "avx512f", "avx512_vnni", "avx512_fp16"}, "fp32"),       # no bf16 arithmetic
    ("cpu", {"fpu", "avx2", "fma"}, "fp32"),
    ("cpu", set(), "fp32"),                                                          # no /proc/cpuinfo
    ("cuda", set(), "bf16"),
])
def test_auto_picks_bf16_only_where_the_hardware_has_it(device, flags, expected):
    assert auto_dtype(device, flags) == expected


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx512_bf16 avx512f\n\n"
                    "processor\t: 1\nflags\t\t: fpu sse2 avx512_bf16 avx512f\n")
    flags = read_cpu_flags(str(info))
    assert {"avx512_bf16", "avx512f", "fpu"} <= flags and "amx_bf16" not in flags
    assert auto_dtype("cpu", flags) == "bf16"
    assert read_cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_resolving():
    assert resolve_dtype(None) == "fp32"
    assert resolve_dtype("bf16") == "bf16" and resolve_dtype(torch.float16) == "fp16"
    assert resolve_dtype("auto", "cuda") == "bf16"
    assert resolve_dtype("auto", "cpu") == auto_dtype("cpu", read_cpu_flags())
    with pytest.raises(ConfigError, match="dtype='fp64' is unknown; use one of fp32, bf16, fp16, auto"):
        resolve_dtype("fp64")
    with pytest.raises(ConfigError, match="not supported"):
        resolve_dtype(torch.float64)


def test_the_ranker_config_records_and_checks_the_dtype(tiny):
    base = SplitRanker.from_pretrained(tiny, split=1).config
    config = dataclasses.replace(base, dtype="bf16")
    assert RankerConfig.from_dict(config.to_dict()).dtype == "bf16"
    assert RankerConfig.from_dict({k: v for k, v in RankerConfig().to_dict().items() if k != "dtype"}).dtype == "fp32"
    with pytest.raises(ConfigError, match="'auto' is resolved when the ranker is loaded"):
        dataclasses.replace(base, dtype="auto").validate()
    with pytest.raises(ConfigError, match="quantization='int8' .* cannot run in dtype='bf16'"):
        dataclasses.replace(base, dtype="bf16", quantization="int8").validate()


def test_a_ranker_runs_and_records_its_dtype(tiny):
    fp32 = SplitRanker.from_pretrained(tiny, split=1, head="twin")
    bf16 = SplitRanker.from_pretrained(tiny, split=1, head="twin", dtype="bf16")
    assert (fp32.config.dtype, fp32.dtype) == ("fp32", torch.float32)
    assert (bf16.config.dtype, bf16.dtype) == ("bf16", torch.bfloat16)
    assert bf16.at(0).config.dtype == "bf16"
    q, d = ["what is a lobster roll"] * 2, [DOCS[0][1], DOCS[1][1]]
    a, b = fp32.score(q, d), bf16.score(q, d)
    assert b.dtype == torch.float32 and not torch.equal(a, b) and torch.allclose(a, b, atol=0.05)
    # moving the weights moves the record with them
    assert bf16.to(torch.float32).config.dtype == "fp32" and bf16.half().config.dtype == "fp16"
    assert SplitRanker.from_pretrained(tiny, dtype=torch.bfloat16).config.dtype == "bf16"
    with pytest.raises(ConfigError, match="dtype='half' is unknown"):
        SplitRanker.from_pretrained(tiny, dtype="half")


def test_a_saved_ranker_keeps_its_dtype(tiny, tmp_path):
    SplitRanker.from_pretrained(tiny, split=1, dtype="bf16").save_pretrained(tmp_path / "m")
    assert SplitRanker.from_pretrained(tmp_path / "m").config.dtype == "bf16"
    assert SplitRanker.from_pretrained(tmp_path / "m", dtype="fp32").dtype == torch.float32


@pytest.mark.parametrize("built,runs", [("fp32", "bf16"), ("bf16", "fp32"), ("bf16", "fp16")])
def test_a_cache_of_one_dtype_is_refused_by_a_ranker_of_another(tiny, tmp_path, built, runs):
    builder = SplitRanker.from_pretrained(tiny, split=1, dtype=built)
    cache = DocCache.build(builder, DOCS, tmp_path / "c", progress=False)
    manifest = json.loads((tmp_path / "c" / MANIFEST_FILE).read_text())
    assert manifest["metadata"]["dtype"] == built
    assert cache.dtype == built and cache.info()["dtype"] == built
    cache.check(builder)  # the same precision is accepted
    other = SplitRanker.from_pretrained(tiny, split=1, dtype=runs)
    with pytest.raises(CacheMismatchError, match=f"built in {built} and this ranker runs in {runs}; run the ranker "
                                                 f"with dtype {built} \\(--dtype {built}\\)"):
        DocCache.open(tmp_path / "c").check(other)


def test_an_fp32_cache_keeps_its_fingerprint_settings(tiny, tmp_path):
    # fp32 caches built before the dtype existed stay valid: their settings carry no dtype
    cache = DocCache.build(SplitRanker.from_pretrained(tiny, split=1), DOCS, tmp_path / "c", progress=False)
    assert "dtype" not in cache.settings and cache.reader.metadata["dtype"] == "fp32"


@pytest.mark.parametrize("flag", ["fp32", "bf16", "fp16", "auto"])
def test_demo_takes_dtype_and_records_it(tiny, tmp_path, flag, capsys):
    out = tmp_path / "scores.json"
    assert main(["demo", "--model", tiny, "--dtype", flag, "--json", str(out), "--no-progress", "--device", "cpu"]) == 0
    assert json.loads(out.read_text())["dtype"] == resolve_dtype(flag, "cpu")
    assert f"dtype = {resolve_dtype(flag, 'cpu')}" in capsys.readouterr().out


def test_a_bad_dtype_flag_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--dtype", "fp64"])
    assert "invalid choice: 'fp64'" in capsys.readouterr().err


def test_the_sweep_config_takes_dtype():
    from lateint.sweep.config import parse_sweep_config

    raw = {"sweep": {"dtype": "bf16"}, "models": [{"path": "m", "name": "a"}, {"path": "m", "name": "b", "dtype": "fp32"}]}
    config = parse_sweep_config(raw)
    assert [config.model_dtype(m) for m in config.models] == ["bf16", "fp32"]
    assert parse_sweep_config({"models": [{"path": "m"}]}).dtype == "fp32"
    with pytest.raises(ConfigError, match=r"\[sweep\] dtype='f32' is unknown; use one of fp32, bf16, fp16, auto"):
        parse_sweep_config({**raw, "sweep": {"dtype": "f32"}})
    with pytest.raises(ConfigError, match=r"\[\[models\]\] b: dtype='x' is unknown"):
        parse_sweep_config({**raw, "models": [{"path": "m", "name": "b", "dtype": "x"}]})
    with pytest.raises(ConfigError, match="quantization='int8' runs in fp32"):
        parse_sweep_config({**raw, "models": [{"path": "m", "quantization": "int8"}]})


def test_the_training_config_takes_dtype(tmp_path):
    from lateint.cli.main import build_parser
    from lateint.training.cli import _apply_running_arguments
    from lateint.training.config import TrainConfig

    base = {"model": "m", "output": str(tmp_path / "run"), "data": {"dataset": "x"}}
    assert TrainConfig.from_dict(base).dtype == "fp32"
    config = TrainConfig.from_dict({**base, "dtype": "auto"})
    assert TrainConfig.load(config.save(tmp_path)).dtype == "auto"
    with pytest.raises(ConfigError, match="dtype='bfloat16' is unknown"):
        TrainConfig.from_dict({**base, "dtype": "bfloat16"})
    args = build_parser().parse_args(["crossval", str(tmp_path / "train_config.toml"), "--dtype", "bf16"])
    assert _apply_running_arguments(TrainConfig.load(args.config), args).dtype == "bf16"
