"""Genres and tag values of the demo corpus, after TD-Data's taxonomy (CustomDancer, section 3.1.2).

Music attributes: genre, rhythm feel, tempo, emotional valence; motion attributes: signature movements
of arms / legs / torso, fluidity, spatial dynamics, intensity, plus body-part emphasis and energy.
Each genre carries what makes it recognisable: tempo range and meter, swing, scale family, drum
pattern, timbre, a movement vocabulary and priors for fluidity and valence. Values are plain data so
the generator, the captions and the datasheet read one source of truth.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# ---- tag values (closed vocabularies; captions only ever state these) --------------------------------
from encoders.tempo import TEMPO_BOUNDS, TEMPO_CLASSES, tempo_class  # noqa: E402  (one shared vocabulary)
ENERGIES: tuple[str, ...] = ("low", "medium", "high")
EMPHASES: tuple[str, ...] = ("arms", "legs", "torso", "hands")
SPATIALS: tuple[str, ...] = ("in_place", "travelling", "turning", "level_changes")
FLUIDITIES: tuple[str, ...] = ("sharp", "fluid")
VALENCES: tuple[str, ...] = ("positive", "negative")
RHYTHMS: tuple[str, ...] = ("straight", "swung", "syncopated", "triple")
# lead instrument of the music (a music-only attribute: the dance does not depend on it) -> synth timbre
INSTRUMENTS: dict[str, str] = {"piano": "piano", "strings": "string", "flute": "flute", "brass": "brass",
                               "synth": "synth", "guitar": "pluck", "bells": "bell", "organ": "organ"}
_FAMILY_INSTRUMENTS: dict[str, tuple[str, ...]] = {
    "street": ("synth", "piano", "brass", "guitar"), "stage": ("piano", "strings", "brass", "flute"),
    "chinese": ("flute", "guitar", "bells", "strings"), "ballroom": ("strings", "piano", "organ", "flute"),
    "latin": ("brass", "piano", "guitar", "organ"),
}
INTENSITIES: tuple[str, ...] = ("gentle", "moderate", "intense")


def intensity_of(energy: str, fluidity: str) -> str:
    """Stylistic intensity follows from energy and movement quality (a derived, consistent tag)."""
    if energy == "high" and fluidity == "sharp":
        return "intense"
    if energy == "low" or (energy == "medium" and fluidity == "fluid"):
        return "gentle"
    return "moderate"


# which stream realises each caption attribute (the generator's ground truth: choreographer.py reads genre,
# tempo, energy, fluidity, spatial, emphasis and the moves; music.py reads genre, tempo, energy, rhythm feel,
# valence and the instrument; intensity is derived from energy and fluidity). Used by eval's oracle ceilings.
REALISED_BY: dict[str, frozenset[str]] = {
    "motion": frozenset({"genre", "tempo", "energy", "fluidity", "intensity", "spatial", "emphasis", "move"}),
    "music": frozenset({"genre", "tempo", "energy", "rhythm", "valence", "instrument"}),
}


def instruments_of(g: "Genre") -> tuple[str, ...]:
    """The lead instruments a genre's music may use: its signature timbre first, then its family's others.

    Why several per genre: the instrument (like the mood) lives only in the music, so a caption that
    names it can be matched only by a model that listens; one fixed instrument per genre would make it
    a synonym of the genre word.
    """
    signature = next(name for name, timbre in INSTRUMENTS.items() if timbre == g.lead)
    rest = tuple(i for i in _FAMILY_INSTRUMENTS[g.family] if i != signature)
    return (signature,) + rest[:3]


@dataclass(frozen=True)
class DrumPattern:
    """One bar of drums on a 4-steps-per-beat grid: 'X' accent, 'x' hit, 'o' ghost, '.' rest."""

    kick: str
    snare: str
    hat: str
    perc: str = ""          # extra percussion line (woodblock, clave, tom); same grid


@dataclass(frozen=True)
class Genre:
    name: str
    family: str                               # street / chinese / ballroom / latin / stage
    words: tuple[str, ...]                    # how captions may name it (synonyms)
    bpm: tuple[float, float]
    meter: int                                # beats per bar (3 for waltz)
    swing: float                              # 0 straight .. 0.6 hard swing (delay of the off 16th/8th)
    syncopated: float                         # probability a clip plays the syncopated variant
    scales: tuple[str, ...]                   # scale names (see music.SCALES); first one = major-ish
    drums: DrumPattern
    bass: str                                 # bass waveform: sine / saw / square / pluck
    lead: str                                 # signature melody timbre (see INSTRUMENTS; clips vary it, instruments_of)
    pad: bool
    positive_prob: float                      # prior of a major (positive valence) mode
    sharp_prob: float                         # prior of sharp (vs fluid) movement quality
    stance: dict[str, float] = field(default_factory=dict)          # base pose offsets (rig controls)
    hand: str = "relaxed"                      # default hand shape
    arm_moves: tuple[str, ...] = ()
    leg_moves: tuple[str, ...] = ()
    torso_moves: tuple[str, ...] = ()
    hand_moves: tuple[str, ...] = ()
    travel_moves: tuple[str, ...] = ("walk",)
    turn_moves: tuple[str, ...] = ("step_turn",)
    level_moves: tuple[str, ...] = ("get_low",)
    groove: str = "bounce"                    # continuous groove: bounce / rise / sway / none
    groove_down_on_beat: bool = True


STREET = dict(bass="saw", pad=False)
_HIPHOP_DRUMS = DrumPattern(kick="X......x..x.....", snare="....X.......X...", hat="x.x.x.x.x.x.x.x.")
_FOUR_FLOOR = DrumPattern(kick="X...x...x...x...", snare="....x.......x...", hat="..x...x...x...x.")
_FUNK = DrumPattern(kick="X.....x...x.....", snare="....X..o.o..X...", hat="xxxxxxxxxxxxxxxx")
_BREAK = DrumPattern(kick="X.........x.....", snare="....X..o.o..X..o", hat="x.x.x.x.x.x.x.x.")
_CHINESE = DrumPattern(kick="X.......x.......", snare="........X.......", hat="", perc="x...x.x.x...x.x.")
_WALTZ = DrumPattern(kick="X...........", snare="....x...x...", hat="x.x.x.x.x.x.")

GENRES: tuple[Genre, ...] = (
    Genre("popping", "street", ("popping", "pop dance", "popping dance"), (88, 118), 4, 0.15, 0.3,
          ("minor", "dorian"), _FUNK, "square", "synth", False, 0.4, 0.9,
          stance={"knee": 6}, hand="relaxed",
          arm_moves=("arm_wave", "popping_hits", "robot_arms"), leg_moves=("step_touch", "leg_hit"),
          torso_moves=("chest_pop", "body_wave"), hand_moves=("finger_tut", "wrist_roll"),
          travel_moves=("walk", "side_glide"), turn_moves=("step_turn",), groove="hit"),
    Genre("locking", "street", ("locking", "lockin", "locking dance"), (100, 130), 4, 0.35, 0.2,
          ("major", "dorian"), _FUNK, "saw", "brass", False, 0.8, 0.8,
          stance={"knee": 8}, arm_moves=("points", "locks", "arm_swing"), leg_moves=("kick", "step_touch"),
          torso_moves=("lean_back", "chest_pop"), hand_moves=("wrist_roll", "finger_point"),
          travel_moves=("walk", "scoobot"), turn_moves=("step_turn",)),
    Genre("hiphop", "street", ("hip-hop", "hip hop", "hiphop"), (84, 112), 4, 0.25, 0.5,
          ("minor", "major"), _HIPHOP_DRUMS, "sine", "piano", True, 0.4, 0.6,
          stance={"knee": 12, "squat": 6, "spine_fwd": 6},
          arm_moves=("arm_swing", "groove_arms", "points"), leg_moves=("step_touch", "kick", "stomp"),
          torso_moves=("chest_pop", "body_wave", "shoulder_bounce"), hand_moves=("finger_point", "wrist_roll"),
          travel_moves=("running_man", "walk"), turn_moves=("step_turn",)),
    Genre("breaking", "street", ("breaking", "breakdance", "b-boying", "breakdancing"), (104, 136), 4, 0.2, 0.5,
          ("minor", "dorian"), _BREAK, "saw", "brass", False, 0.5, 0.7,
          stance={"knee": 10, "squat": 5},
          arm_moves=("toprock_arms", "arm_swing"), leg_moves=("toprock", "kick"),
          torso_moves=("lean_back", "shoulder_bounce"), hand_moves=("finger_point",),
          travel_moves=("toprock_travel", "walk"), turn_moves=("spin",), level_moves=("footwork", "get_low")),
    Genre("urban", "street", ("urban choreography", "urban dance", "choreo", "urban"), (90, 128), 4, 0.1, 0.6,
          ("minor", "major"), _HIPHOP_DRUMS, "saw", "synth", True, 0.5, 0.6,
          stance={"knee": 8},
          arm_moves=("arm_wave", "points", "groove_arms"), leg_moves=("step_touch", "kick"),
          torso_moves=("body_wave", "chest_pop"), hand_moves=("finger_tut", "finger_point"),
          travel_moves=("walk", "side_glide"), turn_moves=("step_turn", "spin")),
    Genre("jazz", "stage", ("jazz", "jazz dance", "jazz funk"), (96, 140), 4, 0.55, 0.3,
          ("major", "dorian"), DrumPattern(kick="X.......x.......", snare="....x.......x...", hat="x..xx..xx..xx..x"),
          "sine", "piano", True, 0.75, 0.5,
          stance={"knee": 5}, hand="spread",
          arm_moves=("jazz_arms", "port_de_bras", "points"), leg_moves=("kick", "step_touch"),
          torso_moves=("body_wave", "hip_sway"), hand_moves=("jazz_hands",),
          travel_moves=("chasse", "walk"), turn_moves=("pirouette", "step_turn")),
    Genre("kpop", "street", ("k-pop", "kpop", "k-pop choreography"), (100, 134), 4, 0.0, 0.4,
          ("major", "minor"), _FOUR_FLOOR, "saw", "synth", True, 0.7, 0.7,
          stance={"knee": 6},
          arm_moves=("points", "arm_wave", "groove_arms"), leg_moves=("step_touch", "kick"),
          torso_moves=("hip_sway", "body_wave"), hand_moves=("finger_point", "v_sign"),
          travel_moves=("walk", "side_glide"), turn_moves=("step_turn",)),
    Genre("hantang", "chinese", ("han-tang", "han tang", "hantang classical"), (64, 96), 4, 0.0, 0.1,
          ("pentatonic_major", "pentatonic_minor"), _CHINESE, "sine", "flute", True, 0.6, 0.15,
          stance={}, hand="orchid",
          arm_moves=("sleeve_circle", "sleeve_toss", "port_de_bras"), leg_moves=("lunge", "rise"),
          torso_moves=("side_bend", "torso_circle"), hand_moves=("orchid_wrists",),
          travel_moves=("float_walk",), turn_moves=("slow_turn",), level_moves=("kneel_bend", "get_low"),
          groove="sway", groove_down_on_beat=False),
    Genre("dai", "chinese", ("dai", "dai folk", "peacock dance", "dai ethnic"), (70, 104), 4, 0.0, 0.2,
          ("pentatonic_major", "pentatonic_minor"), _CHINESE, "pluck", "flute", True, 0.65, 0.3,
          stance={"knee": 14, "squat": 8}, hand="peacock",
          arm_moves=("peacock_arms", "sleeve_circle"), leg_moves=("rise", "step_touch"),
          torso_moves=("three_bends", "side_bend"), hand_moves=("orchid_wrists",),
          travel_moves=("float_walk",), turn_moves=("slow_turn",), level_moves=("kneel_bend",),
          groove="rise"),
    Genre("miao", "chinese", ("miao", "miao folk", "hmong dance"), (92, 126), 4, 0.0, 0.3,
          ("pentatonic_major", "pentatonic_minor"), _CHINESE, "pluck", "bell", False, 0.7, 0.5,
          stance={"knee": 10, "squat": 4},
          arm_moves=("arm_swing", "sleeve_toss"), leg_moves=("stomp", "step_touch"),
          torso_moves=("shoulder_bounce", "side_bend"), hand_moves=("wrist_roll",),
          travel_moves=("walk", "float_walk"), turn_moves=("step_turn",)),
    Genre("shenyun", "chinese", ("shen yun", "shenyun", "chinese classical"), (66, 100), 4, 0.0, 0.1,
          ("pentatonic_major", "pentatonic_minor"), _CHINESE, "sine", "string", True, 0.6, 0.25,
          stance={}, hand="orchid",
          arm_moves=("sleeve_circle", "sleeve_toss", "port_de_bras"), leg_moves=("lunge", "kick"),
          torso_moves=("torso_circle", "side_bend"), hand_moves=("orchid_wrists",),
          travel_moves=("float_walk", "chasse"), turn_moves=("slow_turn", "pirouette"), level_moves=("kneel_bend",),
          groove="sway", groove_down_on_beat=False),
    Genre("ballet", "stage", ("ballet", "classical ballet", "balletic"), (60, 100), 4, 0.0, 0.0,
          ("major", "minor"), DrumPattern(kick="", snare="", hat="", perc="X...x...x...x..."),
          "sine", "string", True, 0.6, 0.1,
          stance={"hip_twist": 35}, hand="soft",
          arm_moves=("port_de_bras",), leg_moves=("tendu", "releve"), torso_moves=("epaulement",),
          hand_moves=("soft_wrists",), travel_moves=("chasse", "float_walk"), turn_moves=("pirouette",),
          level_moves=("plie",), groove="none"),
    Genre("waltz", "ballroom", ("waltz", "waltzing", "ballroom waltz"), (84, 168), 3, 0.0, 0.0,
          ("major", "minor"), _WALTZ, "sine", "string", True, 0.7, 0.1,
          stance={}, hand="soft",
          arm_moves=("waltz_frame", "port_de_bras"), leg_moves=("box_step", "rise"), torso_moves=("sway_lean",),
          hand_moves=("soft_wrists",), travel_moves=("box_step_travel",), turn_moves=("waltz_turn",),
          level_moves=("plie",), groove="rise", groove_down_on_beat=False),
    Genre("krump", "street", ("krump", "krumping", "krump dance"), (70, 104), 4, 0.1, 0.4,
          ("minor", "phrygian"), DrumPattern(kick="X..x..x...x.x...", snare="....X.......X...", hat="x.x.x.x.x.x.x.x."),
          "saw", "brass", False, 0.15, 0.9,
          stance={"knee": 14, "squat": 10, "hip_abd": 8, "spine_fwd": 10}, hand="fist",
          arm_moves=("krump_swings", "popping_hits"), leg_moves=("stomp", "leg_hit"),
          torso_moves=("chest_pop", "lean_back"), hand_moves=("fist_pumps",),
          travel_moves=("stomp_walk",), turn_moves=("step_turn",), level_moves=("get_low",), groove="hit"),
    Genre("house", "street", ("house", "house dance", "house footwork"), (118, 130), 4, 0.05, 0.3,
          ("minor", "major"), _FOUR_FLOOR, "saw", "organ", True, 0.6, 0.4,
          stance={"knee": 8},
          arm_moves=("arm_swing", "groove_arms"), leg_moves=("shuffle", "heel_toe"),
          torso_moves=("jacking", "body_wave"), hand_moves=("finger_point",),
          travel_moves=("shuffle_travel", "side_glide"), turn_moves=("spin",), level_moves=("get_low",),
          groove="jack"),
    Genre("salsa", "latin", ("salsa", "salsa dancing", "latin salsa"), (150, 210), 4, 0.0, 0.6,
          ("major", "minor"), DrumPattern(kick="X.....x.x.....x.", snare="", hat="x.x.x.x.x.x.x.x.",
                                           perc="x..x..x...x.x..."),
          "pluck", "piano", False, 0.8, 0.4,
          stance={"knee": 6}, hand="soft",
          arm_moves=("salsa_styling", "waltz_frame"), leg_moves=("salsa_basic", "step_touch"),
          torso_moves=("hip_sway", "shoulder_bounce"), hand_moves=("soft_wrists",),
          travel_moves=("walk",), turn_moves=("spin", "step_turn"), groove="sway"),
    Genre("tango", "latin", ("tango", "argentine tango", "tango dance"), (56, 72), 4, 0.0, 0.5,
          ("minor", "harmonic_minor"), DrumPattern(kick="X...x...X...x...", snare="", hat="",
                                                    perc="x..x..x.x..x..x."),
          "saw", "organ", True, 0.2, 0.5,
          stance={"knee": 4}, hand="soft",
          arm_moves=("waltz_frame",), leg_moves=("tendu", "kick"), torso_moves=("sway_lean", "epaulement"),
          hand_moves=("soft_wrists",), travel_moves=("walk",), turn_moves=("slow_turn",),
          level_moves=("plie",), groove="none"),
    Genre("dunhuang", "chinese", ("dunhuang", "dunhuang classical", "flying apsaras dance"), (60, 92), 4, 0.0, 0.1,
          ("pentatonic_minor", "pentatonic_major"), _CHINESE, "pluck", "string", True, 0.45, 0.2,
          stance={"knee": 6}, hand="orchid",
          arm_moves=("sleeve_circle", "peacock_arms"), leg_moves=("lunge", "rise"),
          torso_moves=("three_bends", "torso_circle"), hand_moves=("orchid_wrists",),
          travel_moves=("float_walk",), turn_moves=("slow_turn",), level_moves=("kneel_bend",),
          groove="sway", groove_down_on_beat=False),
)

GENRE_BY_NAME: dict[str, Genre] = {g.name: g for g in GENRES}


def genre(name: str) -> Genre:
    """Look a genre up by name (KeyError names the known ones)."""
    if name not in GENRE_BY_NAME:
        raise KeyError(f"unknown genre '{name}' (known: {', '.join(GENRE_BY_NAME)})")
    return GENRE_BY_NAME[name]


def tempo_classes_of(g: Genre) -> list[str]:
    """Absolute tempo classes a genre's tempo range reaches (planning picks one, then a bpm inside)."""
    out = []
    lo, hi = TEMPO_BOUNDS
    edges = {"slow": (0.0, lo), "medium": (lo, hi), "fast": (hi, 1e9)}
    for name in TEMPO_CLASSES:
        a, b = edges[name]
        if min(b, g.bpm[1]) - max(a, g.bpm[0]) >= 4.0:
            out.append(name)
    return out or [tempo_class(sum(g.bpm) / 2)]


def bpm_range_for(g: Genre, cls: str) -> tuple[float, float]:
    lo, hi = TEMPO_BOUNDS
    edges = {"slow": (0.0, lo), "medium": (lo, hi), "fast": (hi, 1e9)}
    a, b = edges[cls]
    return max(a, g.bpm[0]), min(b - 0.5, g.bpm[1])
