"""The meta-path finder and loader that serve the ``azureml`` module tree (see :mod:`.tree`)."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types

from .tree import PACKAGES, TREE

MARK = "__mltrain_compat__"


def _resolve(ref: str):
    module, _, name = ref.partition(":")
    mod = importlib.import_module(module)
    return mod if name == "*" else getattr(mod, name)


def _make_getattr(module_name: str, names: dict[str, str]):
    alias = names.get("*")

    def __getattr__(attr: str):
        if alias is not None:
            target = _resolve(alias)
            if attr == "__all__":
                return getattr(target, "__all__", [n for n in dir(target) if not n.startswith("_")])
            try:
                return getattr(target, attr)
            except AttributeError:
                pass
        elif attr == "__all__":
            return [n for n in names if not n.startswith("_")]
        elif attr in names:
            value = _resolve(names[attr])
            setattr(sys.modules[module_name], attr, value)
            return value
        served = sorted(n for n in names if n != "*") or ["(see mltrain_desktop docs/compat.md)"]
        raise AttributeError(f"module {module_name!r} has no attribute {attr!r} in MLTrain Desktop's azureml "
                             f"compatibility layer (it serves: {', '.join(served)})")
    return __getattr__


class AzuremlLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return None

    def __init__(self, tree: dict[str, dict[str, str]]):
        self.tree = tree

    def exec_module(self, module: types.ModuleType) -> None:
        names = self.tree[module.__name__]
        setattr(module, MARK, True)
        module.__getattr__ = _make_getattr(module.__name__, names)
        module.__doc__ = f"Azure ML SDK v1's {module.__name__}, served by MLTrain Desktop (mltrain_desktop.compat)."


class AzuremlFinder(importlib.abc.MetaPathFinder):
    """Answers for ``azureml`` and the modules of :data:`TREE`; refuses other ``azureml.*`` with a clear error."""

    def __init__(self, tree: dict[str, dict[str, str]] = TREE):
        self.tree = tree
        self.loader = AzuremlLoader(tree)

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname in self.tree:
            spec = importlib.machinery.ModuleSpec(fullname, self.loader, is_package=fullname in PACKAGES)
            if fullname in PACKAGES:
                spec.submodule_search_locations = []
            return spec
        if fullname.startswith("azureml."):
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: MLTrain Desktop's azureml compatibility layer serves "
                f"{', '.join(sorted(self.tree))}; see docs/compat.md", name=fullname)
        return None


def served_modules() -> list[str]:
    return sorted(n for n, m in sys.modules.items() if getattr(m, MARK, False))
