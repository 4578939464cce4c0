"""Scoring shared by the sequence tasks (PR, ASR, SF): corpus-level error rates and Kaldi-style ark files.

Torch-free, so text and lexicon code can use it without loading torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from superb.files import write_text


def error_rate(name: str, hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[str]]) -> float:
    """Corpus-level edit-distance rate (PER, WER, CER): total edits ÷ total reference tokens, a fraction.

    Raises ``ValueError`` when the lists differ in length or every reference is empty.
    """
    import editdistance

    if len(hyps) != len(refs):
        raise ValueError(f"{name}: {len(hyps)} hypotheses but {len(refs)} references; "
                         "pass one hypothesis per reference, in the same order.")
    total = sum(len(ref) for ref in refs)
    if total == 0:
        raise ValueError(f"{name}: the {len(refs)} references are all empty, so the error rate is undefined.")
    errors = sum(editdistance.eval(list(hyp), list(ref)) for hyp, ref in zip(hyps, refs, strict=True))
    return errors / total


def write_ark(path: str | os.PathLike[str], ids: Iterable[str], sequences: Iterable[Sequence[str]]) -> Path:
    """Write Kaldi-style text ark lines ``UTTID PH1 PH2 …`` (as s3prl's ``SPLIT-hyp.ark``/``SPLIT-ref.ark``).

    An empty sequence writes the bare ``UTTID``. Written to ``PATH.partial`` and then renamed, so a kill
    never leaves half a file. Raises ``ValueError`` for an ID or token that is empty or holds whitespace
    (it would shift every column), and when ``ids`` and ``sequences`` differ in length.
    """
    path = Path(path)
    lines = []
    for uttid, seq in zip(ids, sequences, strict=True):
        for token in (uttid, *seq):
            if not token or any(c.isspace() for c in token):
                raise ValueError(f"write_ark {path}: utterance {uttid!r} has an empty or whitespace-holding "
                                 f"token {token!r}; IDs and tokens must be single non-blank words.")
        lines.append(" ".join((uttid, *seq)) + "\n")
    return write_text(path, "".join(lines))


def write_role_arks(expdir: Path, role: str, ids: Sequence[str], positions: Sequence[int],
                    arks: dict[str, Sequence[Sequence[str]]]) -> None:
    """``ROLE-NAME.ark`` for each ``NAME: token sequences`` (in evaluation order), rows in manifest order.

    ``positions[k]`` is the role's item index of the k-th evaluated utterance; ``ids`` names the items.
    """
    order = sorted(range(len(positions)), key=lambda k: positions[k])
    names = [ids[positions[k]] for k in order]
    for name, sequences in arks.items():
        write_ark(Path(expdir) / f"{role}-{name}.ark", names, [sequences[k] for k in order])
