"""Channel kinds by name. Every module in this package that defines an adapter registers it."""

from __future__ import annotations

import importlib
import pkgutil

from .base import ChannelAdapter

_KINDS: dict[str, type[ChannelAdapter]] = {}
_loaded = False
_SKIP = {"base", "registry", "secrets"}


def register(cls: type[ChannelAdapter]) -> type[ChannelAdapter]:
    _KINDS[cls.kind] = cls
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    from .. import channels

    for module in pkgutil.iter_modules(channels.__path__):
        if module.name not in _SKIP and not module.name.startswith("_"):
            importlib.import_module(f"{channels.__name__}.{module.name}")
    _loaded = True


def adapter_class(kind: str) -> type[ChannelAdapter]:
    _load()
    try:
        return _KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown channel kind {kind!r}") from None


def kinds() -> dict[str, type[ChannelAdapter]]:
    _load()
    return dict(sorted(_KINDS.items()))
