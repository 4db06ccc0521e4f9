"""The app is wired by explicit imports and lists, not directory discovery; these tests find
what a new module forgot to add to them."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import contentops
from contentops.channels import registry
from contentops.channels.base import ChannelAdapter

PKG = Path(contentops.__file__).parent


def _imported_submodules(init: Path) -> set[str]:
    """Names the package's __init__ imports from itself (`from . import x`, `from .x import`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(init.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                names.add(node.module.split(".")[0])
            else:
                names.update(alias.name for alias in node.names)
    return names


def test_every_adapter_module_is_in_the_registry():
    listed = set(registry.ADAPTERS)
    for info in pkgutil.iter_modules([str(PKG / "channels")]):
        module = importlib.import_module(f"contentops.channels.{info.name}")
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if (issubclass(cls, ChannelAdapter) and not inspect.isabstract(cls)
                    and cls.__module__ == module.__name__ and hasattr(cls, "kind")):
                assert cls in listed, f"add {cls.__name__} to channels/registry.py ADAPTERS"
    assert len({cls.kind for cls in registry.ADAPTERS}) == len(registry.ADAPTERS)
    assert list(registry.kinds()) == sorted(cls.kind for cls in registry.ADAPTERS)


def test_every_model_module_is_imported_by_the_models_package():
    imported = _imported_submodules(PKG / "models" / "__init__.py")
    for info in pkgutil.iter_modules([str(PKG / "models")]):
        source = (PKG / "models" / f"{info.name}.py").read_text(encoding="utf-8")
        if "db.Model" in source or "db.Table" in source:
            assert info.name in imported, f"import contentops.models.{info.name} in __init__"


def test_every_api_module_with_routes_is_imported_by_the_api_package():
    imported = _imported_submodules(PKG / "api" / "__init__.py")
    for info in pkgutil.iter_modules([str(PKG / "api")]):
        source = (PKG / "api" / f"{info.name}.py").read_text(encoding="utf-8")
        if "@api_bp." in source or "api_bp.add_url_rule" in source:
            assert info.name in imported, f"import contentops.api.{info.name} in __init__"


def test_capabilities_are_declared_not_probed():
    # The web channel's ids are public slugs; every other kind says it does not set one.
    assert registry.adapter_class("web").capabilities.sets_slug is True
    assert not any(cls.capabilities.sets_slug for cls in registry.ADAPTERS
                   if cls.kind != "web")
