"""Synthesised music for a clip: drums, bass, harmony and melody on the clip's beat grid.

Why synthesise: the music is half of what a search embeds (tempo, rhythm feel, mood, genre colour),
so it must be consistent with the tags: the genre's drum pattern (four-on-the-floor for house,
breakbeats for breaking, oom-pah-pah in 3/4 for waltz, woodblock and drum for Chinese genres), swing
for swung clips, off-beat accents for syncopated ones, major vs minor (or pentatonic gong vs yu) modes
for valence (with the melody an octave lower for dark moods), the clip's lead instrument (a few per genre,
chosen independently of the dance), and density / loudness per energy. Beats sit exactly where the
choreography puts its accents (``t0 + k * 60 / bpm``), with a stronger accent on each bar's first beat.

Notes are additive-synthesis snippets cached per (timbre, pitch, length), so a clip costs a few ms.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .plan import CLIP_SECONDS, ClipSpec
from .taxonomy import INSTRUMENTS, Genre, genre

SR = 22050
SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10), "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "pentatonic_major": (0, 2, 4, 7, 9), "pentatonic_minor": (0, 3, 5, 7, 10),
}
MAJORISH = ("major", "pentatonic_major")
# chord roots as scale degrees per bar
PROGRESSIONS = {"positive": ((0, 4, 5, 3), (0, 3, 4, 4), (0, 5, 3, 4)),
                "negative": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6))}
_TIMBRES: dict[str, tuple[tuple[float, ...], float, float]] = {
    # harmonic amplitudes, attack (s), decay time constant (s; 0 = sustain)
    "sine": ((1.0, 0.15), 0.005, 0.0), "saw": ((1.0, 0.5, 0.33, 0.25, 0.2), 0.005, 0.0),
    "square": ((1.0, 0.0, 0.33, 0.0, 0.2), 0.005, 0.0), "pluck": ((1.0, 0.6, 0.4, 0.25, 0.15), 0.002, 0.25),
    "flute": ((1.0, 0.2, 0.05), 0.05, 0.0), "string": ((1.0, 0.5, 0.3, 0.2), 0.08, 0.0),
    "piano": ((1.0, 0.45, 0.25, 0.12), 0.003, 0.5), "synth": ((1.0, 0.0, 0.5, 0.0, 0.3), 0.01, 0.0),
    "brass": ((1.0, 0.7, 0.5, 0.35, 0.25), 0.03, 0.0), "organ": ((1.0, 0.8, 0.6, 0.4), 0.01, 0.0),
    "bell": ((1.0, 0.5, 0.3), 0.002, 0.6),
}
_BELL_RATIOS = (1.0, 2.76, 5.4)
# the lead sits above the drums in the mix, so its timbre (the clip's instrument) is audible
LEAD_GAIN = 0.2


def scale_for(g: Genre, valence: str) -> str:
    """Major-ish mode for positive valence, the genre's minor-ish mode otherwise."""
    want_major = valence == "positive"
    for name in g.scales:
        if (name in MAJORISH) == want_major:
            return name
    if g.family == "chinese":
        return "pentatonic_major" if want_major else "pentatonic_minor"
    return "major" if want_major else "minor"


def _midi_hz(m: float) -> float:
    return 440.0 * 2 ** ((m - 69) / 12)


_TABLE_N = 2048


@lru_cache(maxsize=None)
def _wavetable(timbre: str) -> np.ndarray:
    """One period of a harmonic timbre (sum of its harmonics), normalised by the amplitude sum."""
    amps = _TIMBRES[timbre][0]
    ph = np.arange(_TABLE_N) / _TABLE_N
    return sum(a * np.sin(2 * np.pi * (h + 1) * ph) for h, a in enumerate(amps)) / sum(amps)


@lru_cache(maxsize=4096)
def _note(timbre: str, midi: int, n: int) -> np.ndarray:
    """One note of ``n`` samples (cached: clips reuse the same few pitches and lengths).

    Harmonic timbres read a wavetable (one gather instead of a sine per harmonic); the bell's
    inharmonic partials are summed directly.
    """
    amps, attack, decay = _TIMBRES[timbre]
    t = np.arange(n) / SR
    f = _midi_hz(midi)
    if timbre == "bell":
        y = sum(a * np.sin(2 * np.pi * f * r * t) for a, r in zip(amps, _BELL_RATIOS)) / sum(amps)
    else:
        idx = (np.arange(n) * (f * _TABLE_N / SR)).astype(np.int64) % _TABLE_N
        y = _wavetable(timbre)[idx]
    if timbre == "flute":
        y = y * (1 + 0.05 * np.sin(2 * np.pi * 5.0 * t))
    env = np.minimum(1.0, t / attack)
    if decay:
        env = env * np.exp(-t / decay)
    rel = max(1, int(0.03 * SR))
    env[-rel:] *= np.linspace(1, 0, rel)
    return (y * env).astype(np.float32)


@lru_cache(maxsize=None)
def _drums() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    t = np.arange(int(0.4 * SR)) / SR
    kick = np.sin(2 * np.pi * (50 * t + (100 / 18) * (1 - np.exp(-18 * t)))) * np.exp(-t / 0.12)
    noise = rng.standard_normal(len(t))
    hp = np.diff(noise, prepend=0.0)
    snare = (0.6 * hp * np.exp(-t / 0.06) + 0.5 * np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.05))
    hat = np.diff(hp, prepend=0.0)[: int(0.08 * SR)] * np.exp(-t[: int(0.08 * SR)] / 0.018) * 0.35
    block = (np.sin(2 * np.pi * 820 * t) + 0.5 * np.sin(2 * np.pi * 1230 * t)) * np.exp(-t / 0.035)
    tom = np.sin(2 * np.pi * (95 * t + 3 * (1 - np.exp(-10 * t)))) * np.exp(-t / 0.2)
    crash = np.diff(noise, prepend=0.0) * np.exp(-np.arange(int(0.4 * SR)) / SR / 0.25) * 0.25
    return {k: v.astype(np.float32) for k, v in
            dict(kick=kick, snare=snare, hat=hat, block=block, tom=tom, crash=crash).items()}


def note(timbre: str, midi: int, seconds: float) -> np.ndarray:
    """A cached note; lengths are rounded to 100 ms so clips at different tempi share the cache."""
    q = max(1, int(round(seconds / 0.1)))
    return _note(timbre, int(midi), q * int(0.1 * SR))


def _add(buf: np.ndarray, at: float, sample: np.ndarray, gain: float) -> None:
    i = int(round(at * SR))
    if i >= len(buf) or i + len(sample) <= 0:
        return
    s = sample if i >= 0 else sample[-i:]
    i = max(i, 0)
    n = min(len(s), len(buf) - i)
    buf[i:i + n] += gain * s[:n]


def synthesize(spec: ClipSpec) -> np.ndarray:
    """Mono float32 audio at :data:`SR` Hz, ``CLIP_SECONDS`` long, for a planned clip."""
    g = genre(spec.genre)
    rng = np.random.default_rng([*spec.seed, 2])
    n = int(CLIP_SECONDS * SR)
    buf = np.zeros(n, dtype=np.float32)
    spb = 60.0 / spec.bpm
    step = spb / 4
    energy = {"low": 0.55, "medium": 0.8, "high": 1.0}[spec.energy]
    swing = g.swing if spec.rhythm == "swung" else 0.0
    drums = _drums()
    bar_steps = 4 * g.meter
    first_bar = -1
    n_bars = int(np.ceil((CLIP_SECONDS - spec.t0) / (spb * g.meter))) + 1

    def when(bar: int, s: int) -> float:
        t = spec.t0 + (bar * bar_steps + s) * step
        if s % 4 == 2:
            t += swing * step * 0.66
        elif s % 2 == 1:
            t += swing * step * 0.5
        return t

    lines = [("kick", g.drums.kick, 0.9), ("snare", g.drums.snare, 0.55), ("hat", g.drums.hat, 0.5),
             ("block" if g.family in ("chinese", "latin") else "tom", g.drums.perc, 0.5)]
    for bar in range(first_bar, n_bars):
        for name, pattern, gain in lines:
            if not pattern:
                continue
            for s in range(bar_steps):
                c = pattern[s % len(pattern)]
                if c == "." or (c == "o" and spec.energy == "low"):
                    continue
                if name == "hat" and spec.energy == "low" and s % 2:
                    continue
                level = {"X": 1.0, "x": 0.75, "o": 0.3}[c]
                _add(buf, when(bar, s), drums[name], gain * level * energy)
            if name == "hat" and spec.energy == "high" and pattern:
                for s in range(1, bar_steps, 2):
                    _add(buf, when(bar, s), drums["hat"], 0.2 * energy)
        if spec.rhythm == "syncopated":   # off-beat accents: kick / perc on the "and"s before beats 2 and 4
            for s in (6, 14) if g.meter == 4 else (6,):
                _add(buf, when(bar, s), drums["kick" if g.drums.kick else "block"], 0.5 * energy)
        if bar % 2 == 0 and spec.energy == "high":
            _add(buf, when(bar, 0), drums["crash"], 0.5)

    scale = SCALES[scale_for(g, spec.valence)]
    lead = INSTRUMENTS[spec.instrument]
    melody_octave = 0 if spec.valence == "positive" else -1   # dark moods sit lower, as they usually do
    prog = PROGRESSIONS[spec.valence][int(rng.integers(3))]
    root = spec.key_root

    def degree(d: int, octave: int = 0) -> int:
        return root + 12 * (octave + d // len(scale)) + scale[d % len(scale)]

    for bar in range(first_bar, n_bars):
        chord = prog[bar % len(prog)]
        t_bar = spec.t0 + bar * g.meter * spb
        # bass: on the downbeat, then on the pattern's other kicks / beats
        for b in range(g.meter):
            if b and (g.meter == 3 or (spec.energy == "low" and b % 2)):
                continue
            off = 0.5 * spb if spec.rhythm == "syncopated" and b == g.meter - 1 else 0.0
            pitch = degree(chord, -1) + (7 if b == 2 and g.meter == 4 else 0)
            _add(buf, t_bar + b * spb + off, note(g.bass, pitch, 0.85 * spb), 0.32 * energy * (1.2 if b == 0 else 1))
        # harmony: a pad per bar, or chord stabs on the off-beats of a waltz ("pah pah")
        triad = [degree(chord + k) for k in (0, 2, 4)] if len(scale) == 7 else [degree(chord), degree(chord + 2), degree(chord + 3)]
        if g.pad or g.meter == 3:
            if g.meter == 3:
                for b in (1, 2):
                    for m in triad:
                        _add(buf, t_bar + b * spb, note("string", m, 0.6 * spb), 0.07 * energy)
            else:
                for m in triad:
                    _add(buf, t_bar, note("string" if g.family != "street" else "saw", m, g.meter * spb), 0.05)
        # melody: eighth notes (quarters at low energy), random walk on the scale
        pos = int(rng.integers(len(scale), 2 * len(scale)))
        per_beat = 1 if spec.energy == "low" else 2
        for k in range(g.meter * per_beat):
            if rng.random() > (0.45 + 0.25 * energy):
                continue
            pos = int(np.clip(pos + rng.choice([-2, -1, 1, 1, 2]), len(scale), 3 * len(scale) - 1))
            t_note = t_bar + k * spb / per_beat + (swing * spb / 6 if k % 2 and per_beat == 2 else 0.0)
            _add(buf, t_note, note(lead, degree(pos, melody_octave), 0.95 * spb / per_beat),
                 LEAD_GAIN * (0.6 + 0.4 * energy))
    return np.tanh(1.2 * buf).astype(np.float32)
