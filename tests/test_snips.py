"""Audio SNIPS (s3prl's slot-filling layout) and SF's targets and metrics.

The reader on a tiny copy: ids, splits, meta, lengths, SUPERB's speaker filter, layout variants and errors.
The targets against s3prl's ``CharacterTextSlotEncoder`` rules, and ``slot_type_f1``/``slot_value_cer``
against numbers worked out by hand from s3prl's definitions (``downstream/ctc/metric.py``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from superb.errors import ConfigError, CorpusError
from superb.extract.audio import read
from superb.extract.corpora.snips import SPEAKERS, Snips
from superb.registry import CORPORA
from superb.testing.corpora import SNIPS_ITEMS, snips_plan
from superb.train.tasks.sf.slots import (
    BLANK,
    EOS,
    UNK,
    build_vocabulary,
    iob_to_tagged,
    parse_tagged,
    render,
    slot_type_f1,
    slot_value_cer,
)

SPLITS = ["train", "dev", "test"]
FOLDER_SPLIT = {"train": "train", "valid": "dev", "test": "test"}


def copy_of(root: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "snips"
    shutil.copytree(root, dst)
    return dst


def line_of(path: Path, uid: str) -> int:
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(uid + " "):
            return lineno
    raise LookupError(f"{uid!r} not in {path}")


def replace_line(path: Path, uid: str, new: str) -> int:
    """Replace ``uid``'s line of ``path`` with ``new``; return its line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    lineno = line_of(path, uid)
    lines[lineno - 1] = new
    path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return lineno


# -- reader ----------------------------------------------------------------------------------------------


def test_registry_points_at_the_reader():
    assert CORPORA.get("snips") is Snips


def test_ids_splits_meta_and_lengths(snips_root):
    utts = Snips(snips_root).utterances(SPLITS)
    plan = [p for p in snips_plan() if p.kept]
    expected = sorted(((p.id, FOLDER_SPLIT[p.folder]) for p in plan), key=lambda x: (SPLITS.index(x[1]), x[0]))
    assert [(u.id, u.split) for u in utts] == expected
    by_id = {p.id: p for p in plan}
    for u in utts:
        p = by_id[u.id]
        assert u.meta == {"words": list(p.words), "slots": list(p.tags), "intent": p.intent, "speaker": p.speaker,
                          "transcript": " ".join(p.words)}
        assert u.meta["speaker"] in SPEAKERS[u.split]
        assert Path(u.path) == (snips_root / p.folder / f"{u.id}.wav").resolve()
        assert len(read(u.path, u.start, u.frames)) == u.num_samples > 0
    assert {u.meta["intent"] for u in utts} == {intent for intent, _, _ in SNIPS_ITEMS}  # every sentence read


def test_other_voices_are_ignored(snips_root):
    dropped = [p for p in snips_plan() if not p.kept]
    assert {p.speaker for p in dropped} == {"Ivy", "Olivia"}
    for p in dropped:  # on disk, so the reader really saw and skipped them
        assert (snips_root / p.folder / f"{p.id}.wav").is_file()
    ids = {u.id for u in Snips(snips_root).utterances(SPLITS)}
    assert not ids & {p.id for p in dropped}
    assert "Ivy-snips-train-0" in ids  # Ivy is kept where SUPERB puts her


def test_reads_only_the_splits_asked(snips_root, tmp_path):
    root = copy_of(snips_root, tmp_path)
    shutil.rmtree(root / "train")
    utts = Snips(root).utterances(["dev"])
    assert {u.split for u in utts} == {"dev"}
    assert len(utts) == 6
    with pytest.raises(CorpusError, match=r"train.*split folder"):
        Snips(root).utterances(["train"])
    with pytest.raises(ConfigError, match="valid"):
        Snips(root).utterances(["valid"])  # the folder name is not a split name: dev is


def test_accepts_top_folder_extra_files_subfolders_and_crlf(snips_root, tmp_path):
    wanted = [(u.id, u.split, u.num_samples, u.meta) for u in Snips(snips_root).utterances(SPLITS)]
    outer = tmp_path / "corpora"
    root = outer / "SNIPS"
    shutil.copytree(snips_root, root)
    (outer / "audio_slu").mkdir()  # what s3prl's script leaves beside SNIPS/
    (root / "train" / "notes.txt").write_text("not audio\n")
    (root / "valid" / "more").mkdir()
    shutil.move(root / "valid" / "Amy-snips-valid-1.wav", root / "valid" / "more" / "Amy-snips-valid-1.wav")
    iob = root / "all.iob.snips.txt"
    iob.write_bytes(b"\n" + iob.read_bytes().replace(b"\n", b"\r\n"))
    got = [(u.id, u.split, u.num_samples, u.meta) for u in Snips(outer).utterances(SPLITS)]
    assert got == wanted


def test_iob_prefixed_tags_are_accepted(snips_root, tmp_path):
    root = copy_of(snips_root, tmp_path)
    uid = "Aditi-snips-valid-0"
    replace_line(root / "all.iob.snips.txt", uid, f"{uid} BOS BOOK A TABLE FOR FOUR AT A PIZZERIA EOS\t"
                 "O O O O O B-party_size_number O O B-restaurant_type BookRestaurant")
    (u,) = [u for u in Snips(root).utterances(["dev"]) if u.id == uid]
    assert u.meta["slots"] == ["O", "O", "O", "O", "B-party_size_number", "O", "O", "B-restaurant_type"]


def test_missing_files_and_folders(snips_root, tmp_path):
    root = copy_of(snips_root, tmp_path)
    (root / "slots.txt").unlink()
    with pytest.raises(CorpusError, match=r"slots\.txt.*not found"):
        Snips(root).utterances(SPLITS)
    root = copy_of(snips_root, tmp_path / "b")
    (root / "all.iob.snips.txt").unlink()
    with pytest.raises(CorpusError, match=r"all\.iob\.snips\.txt.*not found"):
        Snips(root).utterances(SPLITS)
    root = copy_of(snips_root, tmp_path / "c")
    shutil.rmtree(root / "test")
    with pytest.raises(CorpusError, match=r"test.*split folder"):
        Snips(root).utterances(SPLITS)
    with pytest.raises(CorpusError, match="not found"):
        Snips(tmp_path / "nowhere")


def test_split_without_superb_speakers(snips_root, tmp_path):
    root = copy_of(snips_root, tmp_path)
    for wav in (root / "test").glob("*.wav"):
        if wav.name.split("-")[0] in SPEAKERS["test"]:
            wav.unlink()
    with pytest.raises(CorpusError, match=r"test: no wav of the SUPERB test speakers"):
        Snips(root).utterances(["test"])


def test_wav_without_iob_line(snips_root, tmp_path):
    root = copy_of(snips_root, tmp_path)
    iob = root / "all.iob.snips.txt"
    lineno = line_of(iob, "Emma-snips-test-1")
    lines = iob.read_text(encoding="utf-8").splitlines()
    del lines[lineno - 1]
    iob.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    with pytest.raises(CorpusError, match=r"Emma-snips-test-1\.wav: no line for 'Emma-snips-test-1' in .*all\.iob"):
        Snips(root).utterances(SPLITS)
    assert len(Snips(root).utterances(["train", "dev"])) == 12  # other splits do not need that line


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{uid} BOS PLAY SOME ROCK & ROLL EOS\tO O O genre genre PlayMusic", r"5 words but 6 labels"),
        ("{uid} BOS PLAY SOME ROCK & ROLL EOS O O O genre genre genre PlayMusic", r"no tab"),
        ("{uid} PLAY SOME ROCK & ROLL\tO O genre genre genre", r"framed by BOS and EOS"),
        ("{uid} BOS PLAY SOME ROCK & ROLL EOS\tO O O genre genre gnre PlayMusic", r"'gnre' is not listed in .*slots"),
        ("{uid} BOS PLAY SOME ROCK AND ROLL EOS\tO O O genre genre genre PlayMusic", r"labelled differently on line"),
    ],
)
def test_malformed_iob_line_names_file_and_line(snips_root, tmp_path, line, message):
    root = copy_of(snips_root, tmp_path)
    iob = root / "all.iob.snips.txt"
    uid = "Brian-snips-test-0"
    if "labelled differently" in message:  # a second, conflicting line for an id
        lineno = len(iob.read_text(encoding="utf-8").splitlines()) + 1
        with iob.open("a", encoding="utf-8") as f:
            f.write(line.format(uid=uid) + "\n")
    else:
        lineno = replace_line(iob, uid, line.format(uid=uid))
    with pytest.raises(CorpusError, match=rf"all\.iob\.snips\.txt:{lineno}: .*{message}"):
        Snips(root).utterances(SPLITS)


def test_identical_repeated_line_is_accepted(snips_root, tmp_path):
    root = copy_of(snips_root, tmp_path)
    iob = root / "all.iob.snips.txt"
    first = iob.read_text(encoding="utf-8").splitlines()[line_of(iob, "Brian-snips-test-0") - 1]
    with iob.open("a", encoding="utf-8") as f:
        f.write(first + "\n")
    assert len(Snips(root).utterances(SPLITS)) == 18


# -- targets ---------------------------------------------------------------------------------------------

BEATLES = ("PLAY THE SONG YESTERDAY BY THE BEATLES".split(), "O O music_item track O artist artist".split())


def spelled(word: str) -> list[str]:
    return list(word)


def test_iob_to_tagged_is_s3prls_character_slot_target():
    tokens = iob_to_tagged(*BEATLES)
    expected = (spelled("PLAY") + [" "] + spelled("THE") + [" ", "B-music_item"] + spelled("SONG")
                + ["E-music_item", " ", "B-track"] + spelled("YESTERDAY") + ["E-track", " "] + spelled("BY")
                + [" ", "B-artist"] + spelled("THE") + [" "] + spelled("BEATLES") + ["E-artist", EOS])
    assert tokens == expected
    assert iob_to_tagged(*BEATLES, eos=False) == expected[:-1]
    assert render(tokens) == "PLAY THE B-music_item SONG E-music_item B-track YESTERDAY E-track BY " \
                             "B-artist THE BEATLES E-artist"


def test_iob_to_tagged_normalises_as_s3prl():
    # "&" is spelled AND; "?" is skipped (the space before it stays, and no <eos> follows, as in s3prl);
    # lower case is upper-cased; characters outside s3prl's vocabulary become <unk>
    tokens = iob_to_tagged(["rock", "&", "hip-hop", "?"], ["genre", "genre", "genre", "O"])
    assert tokens == (["B-genre"] + spelled("ROCK") + [" "] + spelled("AND") + [" "] + spelled("HIP") + [UNK]
                      + spelled("HOP") + ["E-genre", " "])
    assert render(tokens) == "B-genre ROCK AND HIP<unk>HOP E-genre "
    assert parse_tagged(tokens) == [("genre", "ROCK AND HIP<unk>HOP")]


def test_adjacent_values_merge_with_bare_tags_but_not_after_iob_b():
    words = ["ROCK", "JAZZ"]
    assert parse_tagged(iob_to_tagged(words, ["genre", "genre"])) == [("genre", "ROCK JAZZ")]
    assert parse_tagged(iob_to_tagged(words, ["B-genre", "B-genre"])) == [("genre", "ROCK"), ("genre", "JAZZ")]
    assert parse_tagged(iob_to_tagged(words, ["B-genre", "I-genre"])) == [("genre", "ROCK JAZZ")]
    with pytest.raises(ValueError, match="2 words but 1 tags"):
        iob_to_tagged(words, ["O"])


@pytest.mark.parametrize(("intent", "text", "tags"), SNIPS_ITEMS)
def test_parse_tagged_round_trip(intent, text, tags):
    words, tags = text.split(), tags.split()
    expected, run = [], []  # bare tags: a value is a maximal run of one slot name, punctuation words dropped
    for i, (word, tag) in enumerate(zip(words, tags, strict=True)):
        if tag != "O" and word not in "?!.,;-":
            run.append("AND" if word == "&" else word)
        if run and (i + 1 == len(tags) or tags[i + 1] != tag):
            expected.append((tag, " ".join(run)))
            run = []
    assert parse_tagged(iob_to_tagged(words, tags)) == expected
    assert len(expected) == len([t for i, t in enumerate(tags) if t != "O" and (i == 0 or tags[i - 1] != t)])


def test_parse_tagged_ignores_unbalanced_tags():
    assert parse_tagged(["B-artist"] + spelled("ABBA")) == []
    assert parse_tagged(spelled("ABBA") + ["E-artist"]) == []
    assert parse_tagged(["B-artist"] + spelled("AB") + ["E-album"]) == []
    # a begin tag left open inside another value is dropped from it (s3prl's clean)
    assert parse_tagged(["B-artist", "B-album"] + spelled("AB") + ["E-artist"]) == [("artist", "AB")]
    # blanks and <eos> are not part of the text
    assert parse_tagged([BLANK, "B-city", BLANK] + spelled("ROME") + [BLANK, "E-city", EOS]) == [("city", "ROME")]


def test_build_vocabulary_blank_first_and_deterministic():
    seqs = [iob_to_tagged(text.split(), tags.split()) for _, text, tags in SNIPS_ITEMS]
    vocab = build_vocabulary(seqs)
    assert vocab[0] == BLANK
    assert vocab == build_vocabulary(reversed(seqs))
    assert len(vocab) == len(set(vocab))
    assert all(t in vocab for seq in seqs for t in seq)
    slots = sorted({t for _, _, tags in SNIPS_ITEMS for t in tags.split()} - {"O"})
    assert vocab[-2 * len(slots):] == [tok for s in slots for tok in (f"B-{s}", f"E-{s}")]
    assert vocab[1:3] == [EOS, UNK]


# -- metrics ---------------------------------------------------------------------------------------------

REF = iob_to_tagged(*BEATLES)  # slots: music_item SONG (4), track YESTERDAY (9), artist THE BEATLES (11)
REF_CHARS = 4 + 9 + 11


def hyp(tags: str, text: str = "PLAY THE SONG YESTERDAY BY THE BEATLES") -> list[str]:
    return iob_to_tagged(text.split(), tags.split())


PERFECT = hyp("O O music_item track O artist artist")
MISSING = hyp("O O music_item track O O O")  # artist not tagged
WRONG_TYPE = hyp("O O music_item album O artist artist")  # YESTERDAY tagged album, not track
WRONG_CHAR = hyp("O O music_item track O artist artist", "PLAY THE SONG YESTERDAY BY THE BEETLES")


def test_perfect_hypothesis():
    assert slot_type_f1([PERFECT], [REF]) == 1.0
    assert slot_value_cer([PERFECT], [REF]) == 0.0


def test_missing_slot():
    # types: hyp {music_item, track}, ref {music_item, track, artist}: P = 1, R = 2/3, F1 = 2PR/(P+R) = 0.8
    assert slot_type_f1([MISSING], [REF]) == pytest.approx(0.8)
    # artist has no hypothesis value: all 11 characters of THE BEATLES are errors
    assert slot_value_cer([MISSING], [REF]) == pytest.approx(11 / REF_CHARS)


def test_wrong_slot_type():
    # hyp {music_item, album, artist}: P = R = 2/3, F1 = 2/3
    assert slot_type_f1([WRONG_TYPE], [REF]) == pytest.approx(2 / 3)
    # track has no hypothesis value (album does not count): 9 errors for YESTERDAY
    assert slot_value_cer([WRONG_TYPE], [REF]) == pytest.approx(9 / REF_CHARS)


def test_wrong_value_character():
    assert slot_type_f1([WRONG_CHAR], [REF]) == 1.0  # types only
    assert slot_value_cer([WRONG_CHAR], [REF]) == pytest.approx(1 / REF_CHARS)  # BEETLES: one substitution


def test_corpus_level_averaging():
    # F1 is the mean over utterances; CER pools edit distances and reference lengths
    assert slot_type_f1([PERFECT, MISSING], [REF, REF]) == pytest.approx((1 + 0.8) / 2)
    assert slot_value_cer([PERFECT, MISSING, WRONG_CHAR], [REF, REF, REF]) == pytest.approx(12 / (3 * REF_CHARS))


def test_utterances_without_slots():
    plain = iob_to_tagged(["HELLO"], ["O"])
    tagged = iob_to_tagged(["HELLO"], ["greeting"])
    assert slot_type_f1([plain], [plain]) == 1.0  # nothing to find, nothing found
    assert slot_type_f1([tagged], [plain]) == 0.0
    assert slot_type_f1([plain], [tagged]) == 0.0
    assert slot_value_cer([tagged], [plain]) == 0.0  # no reference value: nothing to get wrong
    assert slot_value_cer([plain], [tagged]) == 1.0  # HELLO entirely missed


def test_best_hypothesis_value_is_chosen_per_reference_value():
    ref = iob_to_tagged(["ABBA"], ["artist"])
    two = iob_to_tagged(["XYZW", "ABBE"], ["B-artist", "B-artist"])  # values XYZW (4 errors) and ABBE (1)
    assert slot_value_cer([two], [ref]) == pytest.approx(1 / 4)
    # s3prl starts the search at a CER of 100: a value 100 times too long counts as missing
    huge = iob_to_tagged(["A" * 101], ["artist"])
    assert slot_value_cer([huge], [iob_to_tagged(["B"], ["artist"])]) == 1.0


def test_metric_arguments_must_pair_up():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        slot_type_f1([PERFECT, PERFECT], [REF])
    with pytest.raises(ValueError, match="no utterances"):
        slot_value_cer([], [])
