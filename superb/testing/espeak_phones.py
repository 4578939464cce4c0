"""``python -m superb.testing.espeak_phones TEXT VOICE SPEED PITCH OUT.wav``: speak TEXT with libespeak-ng
(through ctypes) into OUT.wav at its native rate and print ``[rate, [[sample, phoneme], …]]`` as JSON: the
first sample of every phoneme espeak-ng reports (its phoneme events). One utterance per process: the
library's synthesiser keeps state between utterances. Used by ``superb.testing.speech.synthesize_phones``."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import sys

import numpy as np
import soundfile

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS, INITIALIZE_DONT_EXIT = 0x0001, 0x8000
EVENT_LIST_TERMINATED, EVENT_PHONEME = 0, 7
RATE, PITCH = 1, 3  # espeak_PARAMETER


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _Id)]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


def speak(text: str, voice: str, speed: int, pitch: int) -> tuple[int, np.ndarray, list[tuple[int, str]]]:
    """``(rate, int16 samples, [(first sample, phoneme mnemonic)])``."""
    name = ctypes.util.find_library("espeak-ng")
    if name is None:
        raise RuntimeError("libespeak-ng not found (Debian/Ubuntu: apt-get install espeak-ng)")
    lib = ctypes.CDLL(name)
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, INITIALIZE_PHONEME_EVENTS | INITIALIZE_DONT_EXIT)
    if rate <= 0:
        raise RuntimeError("libespeak-ng failed to initialise")
    samples: list[int] = []
    events: list[tuple[int, str]] = []

    def collect(wav, count, event):
        if wav and count > 0:
            samples.extend(wav[:count])
        k = 0
        while event[k].type != EVENT_LIST_TERMINATED:
            if event[k].type == EVENT_PHONEME:
                events.append((int(event[k].sample), event[k].id.string.decode("ascii", "replace")))
            k += 1
        return 0

    callback = _Callback(collect)
    lib.espeak_SetSynthCallback(callback)
    # the library finds voices by name, and British English's file is named "en" (the CLI's "en-gb")
    names = (voice, voice.replace("en-gb", "en", 1)) if voice.startswith("en-gb") else (voice,)
    if all(lib.espeak_SetVoiceByName(n.encode()) != 0 for n in names):
        raise RuntimeError(f"espeak-ng has no voice {voice!r}")
    lib.espeak_SetParameter(RATE, speed, 0)
    lib.espeak_SetParameter(PITCH, pitch, 0)
    data = text.encode()
    lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, 0, None, None)
    lib.espeak_Synchronize()
    return rate, np.asarray(samples, dtype=np.int16), events


def main(argv: list[str]) -> None:
    text, voice, speed, pitch, out = argv
    rate, samples, events = speak(text, voice, int(speed), int(pitch))
    soundfile.write(out, samples, rate, subtype="PCM_16")
    print(json.dumps([rate, events]))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
