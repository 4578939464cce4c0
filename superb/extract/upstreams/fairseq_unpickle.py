"""Read pickled checkpoints (fairseq, microsoft/unilm, ``torch.save``) without running their code.

Every pickle superb reads comes through ``load_pickled``: upstream ``.pt`` files, a Hugging Face folder's
``pytorch_model.bin`` and superb's own training checkpoints (those with ``stand_ins=False``). So a file that
is empty, cut short or names a class off the allow-list gets the same one-line refusal wherever it is given,
and torch's advice to retry with ``weights_only=False`` (which would run the file's code) is never repeated.

``torch.load(weights_only=True)`` refuses every class it does not know, and fairseq checkpoints pickle
several: ``argparse.Namespace`` (old ``args``), omegaconf ``DictConfig``/``ListConfig`` and their nodes
(``cfg``), ``fairseq.data.dictionary.Dictionary`` (HuBERT's ``task_state``), fairseq meters and numpy
scalars (``extra_state``). Importing fairseq or omegaconf to rebuild them would run their code, and
``weights_only=False`` would run anyone's.

So we scan the pickle for the globals it names first. Each one on our allow-list gets an inert stand-in
(a class that only records its constructor arguments and state; nothing of the original runs), the file is
loaded with ``weights_only=True`` inside ``torch.serialization.safe_globals`` (scoped, not global), and
``to_plain`` turns the stand-ins back into dicts, lists and scalars. A global off the list is refused before
anything is unpickled.

fairseq's ``conv_feature_layers`` is a Python expression string; ``parse_conv_layers`` reads it with
``ast`` (numbers, lists, tuples, ``+`` and ``*`` only), never ``eval``.
"""

from __future__ import annotations

import ast
import io
import pickletools
import re
import zipfile
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from pathlib import Path
from typing import Any

import torch

from superb.errors import CheckpointError

# Globals that become inert stand-ins. Nothing here is ever called for real.
_STAND_IN_PREFIXES = ("fairseq.", "omegaconf.", "numpy.", "typing.", "enum.", "pathlib.")
_STAND_IN_NAMES = frozenset({
    "argparse.Namespace",
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.int", "builtins.float",
    "builtins.str", "builtins.bool", "builtins.object", "builtins.type",
})
# Globals torch's own weights_only unpickler knows (tensors, storages, OrderedDict, ...): left to it.
_TORCH_NATIVE_PREFIXES = ("torch.",)
_TORCH_NATIVE_NAMES = frozenset({
    "collections.OrderedDict", "collections.Counter", "_codecs.encode",
    "builtins.bytearray", "builtins.set", "builtins.complex",
})
_MAX_CONV_LAYERS = 64
_ZIP_MAGIC = b"PK\x03\x04"
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


class StandIn:
    """Inert placeholder for a pickled object of an allow-listed class: records args and state only."""

    global_name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> StandIn:
        inst = object.__new__(cls)
        inst.args = args
        inst.state = None
        return inst

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # REDUCE calls cls(*args): nothing to run
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<stand-in {self.global_name}>"


def _empty_dict(*_args: Any) -> dict:
    """Stand-in for ``collections.defaultdict``: the items follow as SETITEMS, the factory is dropped."""
    return {}


def _globals_in_pickle(data: io.BufferedIOBase, count: int) -> set[str]:
    """``module.name`` of every GLOBAL opcode in the next ``count`` pickles of ``data``."""
    found: set[str] = set()
    for _ in range(count):
        for opcode, arg, _pos in pickletools.genops(data):
            if opcode.name == "GLOBAL":
                module, _, name = str(arg).partition(" ")
                # protocol 2 writes Python 2 names (__builtin__.dict); torch maps them back, and so do we
                if (module, name) in NAME_MAPPING:
                    module, name = NAME_MAPPING[(module, name)]
                elif module in IMPORT_MAPPING:
                    module = IMPORT_MAPPING[module]
                found.add(f"{module}.{name}")
    return found


def _scan_globals(path: Path) -> set[str]:
    """Globals a ``torch.save`` file names: its ``data.pkl`` (zip format) or the legacy header pickles."""
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint: the file is empty (0 bytes); was it "
                              "saved or copied completely?")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                records = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
                if not records:
                    raise CheckpointError(f"{path}: a zip file without data.pkl is not a PyTorch checkpoint")
                return _globals_in_pickle(io.BytesIO(archive.read(records[0])), 1)
        with open(path, "rb") as handle:  # legacy format: magic, protocol, sys_info, then the object
            if handle.read(4) == _ZIP_MAGIC:
                raise CheckpointError(f"{path}: not a readable PyTorch checkpoint: cut short (its zip archive has "
                                      "no end); was it saved or copied completely?")
            handle.seek(0)
            return _globals_in_pickle(handle, 4)
    except CheckpointError:
        raise
    except Exception as exc:  # truncated/corrupt files fail inside pickletools or zipfile
        raise unreadable(path, exc) from None


def unreadable(path: Path, exc: BaseException, stand_ins: bool = True) -> CheckpointError:
    """One line for a file torch, zipfile or pickletools could not read: the first sentence of the reason.

    torch's own advice to retry with ``weights_only=False`` is never repeated: that would run the file's code.
    """
    text = str(exc).strip()
    named = _UNSUPPORTED_GLOBAL.search(text)
    if named:  # a class torch itself does not allow (a whole pickled nn.Module, say)
        return refusal(path, named.group(1), stand_ins)
    if "weights_only" in text or "Weights only" in text:
        return CheckpointError(f"{path}: holds pickled objects other than plain data; refusing to load it")
    reason = text.splitlines()[0].split(". ")[0] if text else ""
    return CheckpointError(f"{path}: not a readable PyTorch checkpoint, truncated or corrupt "
                           f"({type(exc).__name__}{': ' + reason if reason else ''})")


def refusal(path: Path, name: str, stand_ins: bool = True) -> CheckpointError:
    """The one line for a pickle that names a global off the allow-list; nothing of it has been run."""
    allowed = ("tensors and plain containers, fairseq, omegaconf, argparse.Namespace, numpy scalars" if stand_ins
               else "tensors and plain containers")
    return CheckpointError(f"{path}: the checkpoint pickles {name!r}, which is not on the allow-list of plain-data "
                           f"classes ({allowed}); refusing to load it")


def _stand_ins(path: Path, names: set[str], stand_ins: bool = True) -> list[tuple[Any, str]]:
    """(stand-in, name) pairs for ``safe_globals``; raises for any global off the allow-list."""
    pairs: list[tuple[Any, str]] = []
    for name in sorted(names):
        if name.startswith(_TORCH_NATIVE_PREFIXES) or name in _TORCH_NATIVE_NAMES:
            continue
        if stand_ins and name == "collections.defaultdict":
            pairs.append((_empty_dict, name))
        elif stand_ins and (name in _STAND_IN_NAMES or name.startswith(_STAND_IN_PREFIXES)):
            pairs.append((type(name.rpartition(".")[2], (StandIn,), {"global_name": name}), name))
        else:
            raise refusal(path, name, stand_ins)
    return pairs


def load_pickled(path: Path, stand_ins: bool = True) -> Any:
    """Load a ``torch.save`` file with ``weights_only=True``, fairseq objects rebuilt as plain data.

    Every failure is one ``CheckpointError`` line: a missing, empty, truncated or corrupt file, or a pickle
    naming a class off the allow-list (refused before anything is unpickled).

    Args:
        path: the file.
        stand_ins: rebuild fairseq/omegaconf/argparse/numpy objects as plain data (upstream checkpoints);
            False allows only what torch's weights-only unpickler knows (superb's own training checkpoints).

    Returns:
        The checkpoint's top-level object with every stand-in converted by ``to_plain`` (tensors kept).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file")
    pairs = _stand_ins(path, _scan_globals(path), stand_ins)
    try:
        with torch.serialization.safe_globals(pairs):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError from torch's reader, EOFError ...
        raise unreadable(path, exc, stand_ins) from None
    return to_plain(obj)


def to_plain(obj: Any, _path: frozenset[int] = frozenset()) -> Any:
    """Stand-ins → plain data: omegaconf containers → their content, objects → their state dict.

    Reference cycles (omegaconf nodes point at their parents) are cut: a revisited object becomes None.
    """
    if isinstance(obj, (StandIn, dict, list, tuple)):
        if id(obj) in _path:
            return None
        _path = _path | {id(obj)}
    if isinstance(obj, StandIn):
        state = obj.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict state, slot state)
        if isinstance(state, dict):
            if "_content" in state:  # omegaconf DictConfig / ListConfig
                return to_plain(state["_content"], _path)
            if "_val" in state:  # omegaconf value node
                return to_plain(state["_val"], _path)
            return {str(k): to_plain(v, _path) for k, v in state.items()}
        if state is None and len(obj.args) == 1 and isinstance(obj.args[0], (str, int, float, bool)):
            return obj.args[0]  # an enum member rebuilt from its value
        return {"__global__": obj.global_name}
    if isinstance(obj, dict):
        return {k: to_plain(v, _path) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_plain(v, _path) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_plain(v, _path) for v in obj)
    return obj


def parse_conv_layers(text: str, where: str) -> list[tuple[int, int, int]]:
    """fairseq's ``conv_feature_layers`` string → ``[(channels, kernel, stride), ...]``.

    Accepts only integer literals, lists, tuples, ``+`` and ``*`` (e.g.
    ``"[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2"``); anything else raises.
    """
    try:
        tree = ast.parse(str(text).strip(), mode="eval")
    except SyntaxError as exc:
        raise CheckpointError(f"{where}: conv_feature_layers {text!r} is not a valid expression ({exc.msg})") from None
    value = _literal(tree.body, text, where)
    if not isinstance(value, (list, tuple)) or not value:
        raise CheckpointError(f"{where}: conv_feature_layers {text!r} must be a non-empty list of 3-tuples")
    layers = []
    for item in value:
        if (not isinstance(item, (list, tuple)) or len(item) != 3
                or not all(isinstance(v, int) and v > 0 for v in item)):
            raise CheckpointError(f"{where}: conv_feature_layers {text!r} holds {item!r}, not (dim, kernel, stride)")
        layers.append((int(item[0]), int(item[1]), int(item[2])))
    return layers


def _literal(node: ast.AST, text: str, where: str) -> Any:
    """Value of a literal/+/* expression; every other node type raises ``CheckpointError``."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(e, text, where) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        left, right = _literal(node.left, text, where), _literal(node.right, text, where)
        if isinstance(node.op, ast.Add) and type(left) is type(right):
            result = left + right
        elif isinstance(node.op, ast.Mult) and isinstance(left, int) and isinstance(right, int):
            result = left * right
        elif isinstance(node.op, ast.Mult) and {type(left), type(right)} & {list, tuple}:
            seq, times = (left, right) if isinstance(right, int) else (right, left)
            if not isinstance(times, int) or not 0 <= times <= _MAX_CONV_LAYERS:
                raise CheckpointError(f"{where}: conv_feature_layers {text!r} repeats a list {times!r} times")
            result = seq * times
        else:
            raise CheckpointError(f"{where}: conv_feature_layers {text!r} combines incompatible values")
        if isinstance(result, (list, tuple)) and len(result) > _MAX_CONV_LAYERS:
            raise CheckpointError(f"{where}: conv_feature_layers {text!r} has more than {_MAX_CONV_LAYERS} layers")
        return result
    raise CheckpointError(
        f"{where}: conv_feature_layers {text!r} may only hold integers, lists, tuples, + and *; "
        f"found {type(node).__name__}"
    )
