"""core: configs reject unknown keys and wrong types by name; seeds reproduce; errors are one line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from marketlab.core.config import from_dict, load_config
from marketlab.core.device import child_rngs, get_device, seed_everything
from marketlab.core.errors import DataError, SpecError
from marketlab.core.registry import register, register_lazy, resolve, unregister
from marketlab.core.schema import book_levels, book_schema


@dataclass(frozen=True)
class Costs:
    fee: float = 0.001
    slippage: float = 0.0


@dataclass(frozen=True)
class Spec:
    name: str
    window: int = 20
    costs: Costs = field(default_factory=Costs)
    symbols: list[str] = field(default_factory=list)


def test_from_dict_builds_nested_frozen_config() -> None:
    spec = from_dict(Spec, {"name": "x", "window": 5, "costs": {"fee": 1}, "symbols": ["A"]})
    assert spec == Spec("x", 5, Costs(1.0, 0.0), ["A"])
    with pytest.raises(AttributeError):
        spec.name = "y"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"name": "x", "windw": 5}, "windw"),
        ({"name": "x", "costs": {"fees": 1}}, "costs.fees"),
        ({"name": "x", "window": "5"}, "window"),
        ({"name": "x", "window": True}, "window"),
        ({"window": 5}, "name"),
    ],
)
def test_from_dict_names_the_bad_key(data: dict, key: str) -> None:
    with pytest.raises(SpecError) as err:
        from_dict(Spec, data, path="spec.toml")
    assert f"'{key}'" in str(err.value) and "spec.toml" in str(err.value)
    assert "\n" not in str(err.value)


def test_load_config_reads_toml_section(tmp_path: Path) -> None:
    p = tmp_path / "s.toml"
    p.write_text('[run]\nname = "a"\nwindow = 3\n')
    assert load_config(Spec, p, "run") == Spec("a", 3)
    p.write_text("[run\nname=")
    with pytest.raises(SpecError, match="invalid TOML"):
        load_config(Spec, p, "run")
    with pytest.raises(SpecError, match="file not found"):
        load_config(Spec, tmp_path / "missing.toml")


def test_data_error_is_one_line_naming_file_row_field_value() -> None:
    err = DataError("f.csv", "negative price\nbad", field="price", row=7, value=-1)
    assert str(err) == "f.csv, row 7, field 'price': negative price bad (value -1)"


def test_seeds_reproduce_and_children_are_independent() -> None:
    a = seed_everything(3).normal(size=4)
    b = seed_everything(3).normal(size=4)
    np.testing.assert_array_equal(a, b)
    r1, r2 = child_rngs(11, 2)
    assert not np.array_equal(r1.normal(size=4), r2.normal(size=4))
    np.testing.assert_array_equal(child_rngs(11, 2)[1].normal(size=3), child_rngs(11, 2)[1].normal(size=3))


def test_torch_determinism_on_cpu() -> None:
    import torch

    def run() -> torch.Tensor:
        seed_everything(5)
        net = torch.nn.Linear(4, 2)
        return net(torch.randn(3, 4))

    assert torch.equal(run(), run())
    assert get_device("cpu").type == "cpu"
    assert get_device("auto").type in {"cpu", "cuda"}


def test_registry_resolves_lazily_and_rejects_unknown() -> None:
    register_lazy("signal/test-book-schema", "marketlab.core.schema:book_schema")
    try:
        assert resolve("signal/test-book-schema") is book_schema
        assert resolve("test-book-schema", kind="signal") is book_schema
    finally:
        unregister("signal/test-book-schema")
    with pytest.raises(SpecError, match="unknown venue id 'nope'.*known: .*"):
        resolve("nope", kind="venue")
    with pytest.raises(ValueError, match="must be 'marketlab"):
        register_lazy("signal/evil", "os:system")  # lazy strings never leave marketlab


def test_registry_takes_user_objects_and_refuses_silent_shadowing() -> None:
    class MyReward:
        pass

    register("reward/test-mine-v1", MyReward)
    try:
        assert resolve("test-mine-v1", kind="reward") is MyReward
        with pytest.raises(ValueError, match="already registered"):
            register("reward/test-mine-v1", object())
        # a user-registered *string* is an object, never imported
        register("reward/test-str-v1", "os:system")
        assert resolve("reward/test-str-v1") == "os:system"
    finally:
        unregister("reward/test-mine-v1")
        unregister("reward/test-str-v1")


def test_book_schema_columns() -> None:
    s = book_schema(3)
    assert list(s)[:7] == ["ts", "symbol", "seq", "ask_px_1", "ask_sz_1", "bid_px_1", "bid_sz_1"]
    assert book_levels(list(s)) == 3
    with pytest.raises(ValueError):
        book_schema(0)
