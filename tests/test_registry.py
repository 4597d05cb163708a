"""Registry: registration, build by name or instance, errors that list valid names, scopes and
entry-point plugins."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, version
from pathlib import Path
from typing import Any

import pytest

from anyssl import registry as reg_mod
from anyssl.registry import DuplicateNameError, Registry, UnknownNameError


class Thing:
    """A thing for tests."""

    def __init__(self, size: int = 1) -> None:
        self.size = size


def make_registry() -> Registry[Any]:
    r: Registry[Any] = Registry("widget")
    r.register("thing")(Thing)
    r.add("other", lambda: "other", description="another one")
    return r


def test_build_by_name_passes_kwargs() -> None:
    r = make_registry()
    obj = r.build("thing", size=3)
    assert isinstance(obj, Thing) and obj.size == 3


def test_build_passes_instances_through() -> None:
    r = make_registry()
    t = Thing(5)
    assert r.build(t) is t


def test_unknown_name_lists_valid_and_closest() -> None:
    r = make_registry()
    with pytest.raises(UnknownNameError) as err:
        r.get("thingg")
    msg = str(err.value)
    assert "unknown widget 'thingg'" in msg
    assert "did you mean 'thing'" in msg
    assert "valid: other, thing" in msg


def test_duplicate_needs_override() -> None:
    r = make_registry()
    with pytest.raises(DuplicateNameError, match="override=True"):
        r.add("thing", Thing)
    r.add("thing", lambda: 42, override=True)
    assert r.build("thing") == 42


def test_descriptions_default_to_docstring_first_line() -> None:
    r = make_registry()
    descs = {e.name: e.description for e in r.entries()}
    assert descs == {"thing": "A thing for tests.", "other": "another one"}


def test_scoped_entries_shadow_unscoped_and_stay_private() -> None:
    r = make_registry()
    r.add("thing", lambda: "image-thing", scope="image")
    r.add("only_graph", lambda: "g", scope="graph")
    assert r.build("thing", scope="image") == "image-thing"
    assert isinstance(r.build("thing", scope="graph"), Thing)
    assert r.names("image") == ["other", "thing"]
    assert r.names("graph") == ["only_graph", "other", "thing"]
    with pytest.raises(UnknownNameError, match="for modality 'image'"):
        r.get("only_graph", scope="image")


def test_bad_names_rejected() -> None:
    r = make_registry()
    with pytest.raises(ValueError, match="invalid widget name"):
        r.add("has space", Thing)


@pytest.fixture
def fake_entry_points(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Replace the installed ``anyssl.plugins`` entry points by ``{value: loader}``; the core
    counts as loaded, no entry point as tried."""
    from anyssl import registry_plugins as plugins

    def install(loaders: dict[str, Callable[[], Any]]) -> None:
        eps = [EntryPoint(name=value.split(":")[-1].rsplit(".", 1)[-1], value=value,
                          group=plugins.ENTRY_POINT_GROUP) for value in loaders]
        monkeypatch.setattr(EntryPoint, "load", lambda self: loaders[self.value])
        monkeypatch.setattr(plugins, "entry_points", lambda group: eps)

    monkeypatch.setattr(plugins, "_state", {"core": True, "all": False})
    monkeypatch.setattr(plugins, "_attempted", set())
    for name in ("unavailable_plugins", "broken_plugins", "plugin_values"):
        monkeypatch.setattr(plugins, name, {})
        if hasattr(reg_mod, name):
            monkeypatch.setattr(reg_mod, name, getattr(plugins, name))
    return install


def test_entry_point_plugins_load_lazily_on_miss(fake_entry_points: Callable[..., None]) -> None:
    r = make_registry()
    calls: list[str] = []

    def plugin() -> None:
        calls.append("loaded")
        r.add("from_plugin", lambda: "plugged")

    fake_entry_points({"x:p": plugin})
    assert r.build("thing").size == 1
    assert calls == []  # a hit does not load plugins
    assert r.build("from_plugin") == "plugged"
    assert calls == ["loaded"]
    assert r.entry("from_plugin").plugin == "p"  # the entry point it came from
    with pytest.raises(UnknownNameError):
        r.get("still_missing")
    assert calls == ["loaded"]  # loaded once only


def test_a_modality_lookup_loads_its_own_builtin_plugin_and_third_party_ones(
        fake_entry_points: Callable[..., None]) -> None:
    r: Registry[Any] = Registry("modality")
    loaded: list[str] = []

    def plugin(name: str) -> Callable[[], None]:
        def load() -> None:
            loaded.append(name)
            r.add(name, lambda: name)
        return load

    fake_entry_points({"anyssl.modalities.sound": plugin("sound"),
                       "anyssl.modalities.graphs": plugin("graphs"),
                       "other_pkg.plugin:video": plugin("video")})
    assert r.build("sound") == "sound"
    assert sorted(loaded) == ["sound", "video"]  # not the other built-in one (graphs)
    assert r.names() == ["graphs", "sound", "video"]  # a listing loads them all
    assert sorted(loaded) == ["graphs", "sound", "video"]


def test_a_plugin_that_raises_is_skipped_with_a_one_line_warning(
        fake_entry_points: Callable[..., None], caplog: pytest.LogCaptureFixture) -> None:
    from anyssl.registry import MODALITIES

    def broken() -> None:
        raise KeyError("boom")

    fake_entry_points({"bad_pkg.plugin:badplug": broken})
    with caplog.at_level("WARNING", logger="anyssl.registry"):
        assert "image" in MODALITIES.names()  # other plugins still work
    [record] = [r for r in caplog.records if "badplug" in r.getMessage()]
    message = record.getMessage()
    assert "\n" not in message
    assert "anyssl plugin 'badplug' (bad_pkg.plugin:badplug) raised KeyError: 'boom'" in message
    with pytest.raises(UnknownNameError, match=r"modality 'badplug' is not available: its "
                       r"plugin \(entry point 'badplug' = bad_pkg.plugin:badplug\) raised "
                       r"KeyError: 'boom' on import; fix or uninstall it"):
        MODALITIES.get("badplug")


def test_duplicate_registration_names_both_modules() -> None:
    r = make_registry()
    register_again = eval("lambda r: r.add('thing', int)", {"__name__": "other_plugin.mod"})
    with pytest.raises(DuplicateNameError) as err:
        register_again(r)
    assert str(err.value) == (
        f"widget 'thing' is already registered by module {__name__}; registers it again in "
        "module other_plugin.mod: rename one, or pass override=True to replace it")


def test_importing_anyssl_and_its_registries_imports_no_torch() -> None:
    code = ("import sys, anyssl, anyssl.registry, anyssl.registry_cache, anyssl.cli.app; "
            "anyssl.METHODS; v = anyssl.__version__; "
            "print(sorted(m for m in ('torch', 'numpy', 'sklearn') if m in sys.modules), v)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["[]", version("anyssl")]


def test_core_parts_register_on_the_first_lookup() -> None:
    code = ("from anyssl.registry import METHODS, OBJECTIVES; "
            "print(METHODS.get('simclr').__name__, 'vicreg' in OBJECTIVES)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["SimCLR", "True"]


def test_builtin_image_modality_is_found_through_entry_points() -> None:
    from anyssl.registry import MODALITIES

    assert "image" in MODALITIES.names()


def test_import_plugin_error_is_one_line() -> None:
    with pytest.raises(ValueError, match="cannot import plugin module 'no_such_mod_xyz'"):
        reg_mod.import_plugin("no_such_mod_xyz")


@pytest.mark.parametrize(("name", "fix"), [
    ("sonar", "install it and retry"),  # not an extra of anyssl's: no anyssl[sonar]
    ("graph", "pip install 'anyssl[graph]'"),  # an extra anyssl has
])
def test_a_modality_whose_dependency_is_missing_says_what_is_missing(
        fake_entry_points: Callable[..., None], name: str, fix: str) -> None:
    modalities: Registry[Any] = Registry("modality")

    def missing() -> None:
        raise ModuleNotFoundError("No module named 'sonarlib'", name="sonarlib")

    fake_entry_points({f"vendor.plugins:{name}": missing})
    with pytest.raises(UnknownNameError) as err:
        modalities.get(name)
    assert str(err.value) == (
        f"modality {name!r} is not available: its plugin (entry point {name!r} = "
        f"vendor.plugins:{name}) needs module 'sonarlib', which is not installed; {fix}")


# ---- --plugin modules ----------------------------------------------------------------------------
PLUGIN = """
from anyssl.registry import Registry
WIDGETS = Registry("widget")
WIDGETS.add("w", int)
"""


def test_import_plugin_finds_a_module_in_the_current_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_cwd_plugin_a.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    reg_mod.import_plugin("my_cwd_plugin_a")
    assert sys.modules["my_cwd_plugin_a"].WIDGETS.names() == ["w"]
    del sys.modules["my_cwd_plugin_a"]


def test_import_plugin_takes_a_path_to_a_py_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "my_file_plugin_b.py").write_text(PLUGIN)
    reg_mod.import_plugin(str(tmp_path / "sub" / "my_file_plugin_b.py"))
    assert sys.modules["my_file_plugin_b"].WIDGETS.names() == ["w"]
    reg_mod.import_plugin(str(tmp_path / "sub" / "my_file_plugin_b.py"))  # again: no-op
    del sys.modules["my_file_plugin_b"]
    with pytest.raises(ValueError, match=r"plugin file .*nope.py does not exist"):
        reg_mod.import_plugin(str(tmp_path / "nope.py"))
    (tmp_path / "json.py").write_text("")
    with pytest.raises(ValueError, match="a module named 'json' is already imported"):
        reg_mod.import_plugin(str(tmp_path / "json.py"))


def test_import_plugin_names_a_missing_dependency(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_needy_plugin_c.py").write_text("import sonarlib_not_installed\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"^plugin module 'my_needy_plugin_c' needs module "
                       r"'sonarlib_not_installed', which is not installed; install it"):
        reg_mod.import_plugin("my_needy_plugin_c")
