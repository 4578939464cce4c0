"""ASR decoding: greedy best path, and lexicon-constrained beam search with a KenLM language model.

:class:`BeamSearch` is s3prl's ``W2lKenLMDecoder`` (``downstream/asr/w2l_decoder.py``) rebuilt on
torchaudio's :func:`~torchaudio.models.decoder.ctc_decoder`, i.e. flashlight-text's ``LexiconDecoder`` (its
PyPI wheels bundle KenLM, so no separate ``kenlm`` package is needed). Defaults are s3prl's
``downstream/asr/config.yaml`` ``decoder_args``: beam 5, beam threshold 25, LM weight 2, word score -1, unknown
word score -inf, silence score 0, one best hypothesis, every token considered per frame, max (not log-add)
merging of hypotheses. As in s3prl, the decoder reads log-softmax outputs.

The lexicon spells each word with our characters plus the closing ``|``, as :func:`~.text.encode` spells a
transcript (``CAT<TAB>C A T |``). It comes from a word list the user gives, or, for an ARPA model without one,
from the model's unigrams; a binary KenLM model has no readable vocabulary, so it needs the word list.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch

from superb.errors import ConfigError
from superb.files import numbered_lines
from superb.train.tasks.asr.text import BLANK, VOCAB, WORD_BOUNDARY, decode, encode
from superb.train.tasks.ctc import greedy

_KENLM_BINARY_MAGIC = b"mmap lm http://kheafield.com/code"  # first bytes of every KenLM binary (build_binary)
_LM_SPECIAL_WORDS = frozenset({"<s>", "</s>", "<unk>"})  # in every ARPA vocabulary, never spelled


def greedy_text(logits: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """Best-path transcripts of ``logits (B, T, len(VOCAB))`` over each row's first ``lengths (B,)`` frames.

    Argmax per frame, repeats collapsed, blanks dropped, then :func:`~.text.decode` (``|`` → space).
    """
    _check_logits(logits, lengths)
    return [decode(ids) for ids in greedy(logits, lengths)]


def _check_logits(logits: torch.Tensor, lengths: torch.Tensor) -> None:
    if logits.ndim != 3 or logits.shape[-1] != len(VOCAB):
        raise ValueError(f"expected logits (batch, frame, {len(VOCAB)}); found {list(logits.shape)}")
    if lengths.shape != logits.shape[:1]:
        raise ValueError(f"expected lengths ({logits.shape[0]},) for logits {list(logits.shape)}; "
                         f"found {list(lengths.shape)}")
    if len(lengths) and (int(lengths.min()) < 0 or int(lengths.max()) > logits.shape[1]):
        raise ValueError(f"lengths must lie in 0..{logits.shape[1]} (the frame axis); found {lengths.tolist()}")


def _spelling(word: str) -> list[str] | None:
    """``word`` in our tokens with the closing ``|``; ``None`` when it holds a character outside the vocabulary."""
    try:
        ids = encode(word)
    except ConfigError:
        return None
    return [VOCAB[i] for i in ids]


def arpa_unigrams(path: str | os.PathLike[str]) -> list[str]:
    """The words of an ARPA model's ``\\1-grams:`` section, in file order (``<s>``, ``</s>``, ``<unk>`` left out).

    Reads only up to the end of that section, so a multi-GB 4-gram costs one pass over its unigrams. Raises
    ``ConfigError`` when the file cannot be read or has no unigram section.
    """
    path = Path(path)
    words: list[str] = []
    in_unigrams = False
    for lineno, line in numbered_lines(path, "ARPA language model", ConfigError):
        line = line.strip()
        if not in_unigrams:
            in_unigrams = line == "\\1-grams:"
            continue
        if not line:
            continue
        if line.startswith("\\"):  # \2-grams: or \end\
            break
        fields = line.split()
        if len(fields) < 2:
            raise ConfigError(f"{path}:{lineno}: malformed unigram line {line!r}; expected "
                              "'LOGPROB WORD [BACKOFF]'.")
        if fields[1] not in _LM_SPECIAL_WORDS:
            words.append(fields[1])
    if not in_unigrams:
        raise ConfigError(f"{path}: no '\\1-grams:' section; this is not an ARPA language model.")
    return words


def read_words(path: str | os.PathLike[str]) -> list[str]:
    """A word list: the first whitespace-separated field of every non-blank line, so a lexicon file serves too.

    Raises ``ConfigError`` for a file that cannot be read and, naming ``file:line``, for a word with a character
    outside the vocabulary (it could never be spelled by the model).
    """
    words = []
    for lineno, line in numbered_lines(path, "word list", ConfigError):
        fields = line.split()
        if not fields or fields[0] in _LM_SPECIAL_WORDS:
            continue
        if _spelling(fields[0]) is None:
            bad = next(c for c in fields[0].upper() if c not in VOCAB[2:])
            raise ConfigError(f"{path}:{lineno}: word {fields[0]!r} holds {bad!r}; ASR words may only use the "
                              "letters A-Z and the apostrophe (').")
        words.append(fields[0])
    return words


def _is_kenlm_binary(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(_KENLM_BINARY_MAGIC)) == _KENLM_BINARY_MAGIC


def _import_ctc_decoder():
    try:
        import flashlight.lib.text.decoder  # noqa: F401  (torchaudio's error would not say which package)
        from torchaudio.models.decoder import ctc_decoder
    except (ImportError, RuntimeError) as exc:
        raise ConfigError("KenLM beam search needs the flashlight-text package (its wheels include KenLM): "
                          f"pip install flashlight-text ({exc})") from exc
    return ctc_decoder


class BeamSearch:
    """Lexicon-constrained CTC beam search with a KenLM word LM: ``logits (B, T, V)``, ``lengths (B,)`` → texts.

    Args:
        lm: KenLM model, ARPA text or ``build_binary`` output; ``None`` decodes with the lexicon alone.
        lexicon: word list (one word per line; a lexicon file works, only its first field is read). Words
            must be written as the LM writes them. Default: the ARPA model's unigrams, skipping any word with
            a character outside the vocabulary (see :attr:`skipped`). Required for a binary LM or no LM.
        beam: hypotheses kept per frame. (Default: 5)
        beam_threshold: hypotheses scoring this far below the best are pruned. (Default: 25)
        lm_weight: weight of the LM score. (Default: 2)
        word_score: added per word emitted. (Default: -1)
        unk_score: added per word outside the lexicon; ``-inf`` never emits one. (Default: -inf)
        sil_score: added per ``|`` (silence) token. (Default: 0)

    Words come out upper-cased (LibriSpeech references are) and joined with single spaces. Raises
    ``ConfigError`` for a missing or unreadable LM or word list, an empty lexicon, a bad option, or a missing
    flashlight-text.
    """

    def __init__(
        self,
        lm: str | os.PathLike[str] | None,
        lexicon: str | os.PathLike[str] | None = None,
        *,
        beam: int = 5,
        beam_threshold: float = 25.0,
        lm_weight: float = 2.0,
        word_score: float = -1.0,
        unk_score: float = -math.inf,
        sil_score: float = 0.0,
    ) -> None:
        if not isinstance(beam, int) or isinstance(beam, bool) or beam < 1:
            raise ConfigError(f"decode.beam must be a positive integer; got {beam!r}.")
        for name, value in (("beam_threshold", beam_threshold), ("lm_weight", lm_weight),
                            ("word_score", word_score), ("sil_score", sil_score)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ConfigError(f"decode.{name} must be a finite number; got {value!r}.")
        if not isinstance(unk_score, (int, float)) or isinstance(unk_score, bool) or math.isnan(unk_score):
            raise ConfigError(f"decode.unk_score must be a number (-inf allowed); got {unk_score!r}.")
        self.lm = None if lm is None else Path(lm)
        self.lexicon = None if lexicon is None else Path(lexicon)
        self.options = {"beam": beam, "beam_threshold": float(beam_threshold), "lm_weight": float(lm_weight),
                        "word_score": float(word_score), "unk_score": float(unk_score),
                        "sil_score": float(sil_score)}
        ctc_decoder = _import_ctc_decoder()

        if self.lm is not None and not self.lm.is_file():
            raise ConfigError(f"language model {self.lm} not found; pass a KenLM model (ARPA or binary), e.g. "
                              "LibriSpeech's 4-gram.arpa, or leave decode.lm unset for greedy decoding only.")
        self.skipped: tuple[str, ...] = ()  # ARPA unigrams the model cannot spell
        if self.lexicon is not None:
            words = read_words(self.lexicon)
        elif self.lm is None:
            raise ConfigError("beam search without a language model needs a word list (decode.lexicon).")
        elif _is_kenlm_binary(self.lm):
            raise ConfigError(f"{self.lm} is a binary KenLM model, whose vocabulary cannot be read back; pass a "
                              "word list as well (decode.lexicon), e.g. LibriSpeech's librispeech-vocab.txt.")
        else:
            unigrams = arpa_unigrams(self.lm)
            words = [w for w in unigrams if _spelling(w) is not None]
            self.skipped = tuple(w for w in unigrams if _spelling(w) is None)
        words = list(dict.fromkeys(words))  # a word once, first spelling kept
        if not words:
            raise ConfigError(f"no words to decode with: {self.lexicon or self.lm} holds no word spelled with "
                              "A-Z and the apostrophe.")
        self.words: tuple[str, ...] = tuple(words)

        with tempfile.TemporaryDirectory(prefix="superb-asr-lexicon-") as tmp:
            lexicon_file = Path(tmp) / "lexicon.txt"  # read whole by the decoder, so it need not outlive it
            lexicon_file.write_text("".join(f"{w}\t{' '.join(_spelling(w))}\n" for w in words), encoding="utf-8")
            try:
                self._decoder = ctc_decoder(
                    lexicon=str(lexicon_file),
                    tokens=list(VOCAB),
                    lm=None if self.lm is None else str(self.lm),
                    nbest=1,
                    beam_size=beam,
                    beam_size_token=len(VOCAB),  # s3prl: every token, every frame
                    beam_threshold=float(beam_threshold),
                    lm_weight=float(lm_weight),
                    word_score=float(word_score),
                    unk_score=float(unk_score),
                    sil_score=float(sil_score),
                    log_add=False,
                    blank_token=BLANK,
                    sil_token=WORD_BOUNDARY,
                    unk_word="<unk>",
                )
            except Exception as exc:  # KenLM reports a bad file as a bare RuntimeError/Exception
                raise ConfigError(f"cannot load language model {self.lm}: {exc}") from exc

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"BeamSearch(lm={str(self.lm)!r}, words={len(self.words)}, {opts})"

    def __call__(self, logits: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Transcripts of ``logits (B, T, len(VOCAB))`` over each row's first ``lengths (B,)`` frames."""
        _check_logits(logits, lengths)
        emissions = torch.log_softmax(logits.detach().float().cpu(), dim=-1)  # (B, T, V), as s3prl decodes
        out = []
        for row, n in zip(emissions, lengths.tolist(), strict=True):
            if int(n) == 0:
                out.append("")
                continue
            hyps = self._decoder(row[: int(n)].unsqueeze(0).contiguous())[0]  # (1, n, V) → n-best of one
            out.append(_join(hyps[0].words) if hyps else "")
        return out


def _join(words: Iterable[str]) -> str:
    return " ".join(w.upper() for w in words)
