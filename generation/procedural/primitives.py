"""Parameterised movement primitives: each move turns (rng, beats, step) into keyframes on the beat grid.

Why keyframes on beats: a dancer's accents are the instants a movement arrives somewhere and its
velocity drops; placing every key pose on a beat (or an "and") makes the kinematic beats of the motion
coincide with the music's beats (what the Beat Alignment Score measures). Values are rig control
offsets in degrees from the genre's stance (see ``rig``), written for the LEFT lead side; the
choreographer mirrors a move for right-leaning dancers. ``step`` is the key spacing in beats (0.5 for
high energy double-time, 2 for low energy half-time), ``yaw`` keys are cumulative within the move.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Key = tuple[float, dict[str, float]]
MoveFn = Callable[[np.random.Generator, int, float], list[Key]]


def L(**kw: float) -> dict[str, float]:
    return {f"l_{k}": v for k, v in kw.items()}


def R(**kw: float) -> dict[str, float]:
    return {f"r_{k}": v for k, v in kw.items()}


def B(**kw: float) -> dict[str, float]:
    return {**L(**kw), **R(**kw)}


def C(**kw: float) -> dict[str, float]:
    return dict(kw)


def merge(*parts: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in parts:
        for k, v in p.items():
            out[k] = out.get(k, 0.0) + v
    return out


def swap(p: dict[str, float]) -> dict[str, float]:
    """Mirror a pose to the other side (l_ <-> r_, lateral central controls negated)."""
    from .rig import MIRROR_NEGATE, mirror_name
    return {mirror_name(k): (-v if k in MIRROR_NEGATE else v) for k, v in p.items()}


def cycle(poses: list[dict[str, float]], n: int, step: float, start: float = 0.0) -> list[Key]:
    """Repeat ``poses`` one per ``step`` beats over ``n`` beats (the cyclic core of most moves)."""
    count = max(1, int(np.ceil((n - start) / step - 1e-6)))
    stride = max(1, len(poses) // count) if count < len(poses) else 1   # few keys: skip through the cycle
    return [(start + i * step, poses[(i * stride) % len(poses)]) for i in range(count)]


def jitter(rng: np.random.Generator, p: dict[str, float], frac: float = 0.15) -> dict[str, float]:
    """Per-clip variation of a pose's amplitudes (no two dancers hit the same angles)."""
    return {k: v * float(rng.uniform(1 - frac, 1 + frac)) for k, v in p.items()}


@dataclass(frozen=True)
class Move:
    name: str
    part: str          # arms / legs / torso / hands / travel / turn / level
    label: str         # how tags and captions call it
    fn: MoveFn


MOVES: dict[str, Move] = {}


def move(name: str, part: str, label: str) -> Callable[[MoveFn], MoveFn]:
    def deco(fn: MoveFn) -> MoveFn:
        MOVES[name] = Move(name, part, label, fn)
        return fn
    return deco


# ---------------------------------------------------------------- arms
ARM_SIDE = dict(arm_up=68)
ARM_FWD = dict(arm_up=68, arm_fwd=90)


@move("arm_wave", "arms", "arm waves")
def arm_wave(rng, n, step):
    a = merge(L(arm_up=58, arm_twist=-80, elbow=45, wrist_flex=-35), R(arm_up=80, arm_twist=-80, elbow=5, wrist_flex=40),
              C(spine_side=6))
    return cycle([jitter(rng, a), jitter(rng, swap(a))], n, min(step, 1.0))


@move("popping_hits", "arms", "hard hits")
def popping_hits(rng, n, step):
    bank = [merge(L(arm_up=60, arm_fwd=80, elbow=90), C(chest_pop=12)),
            merge(L(arm_up=68, arm_twist=-90, elbow=90), R(arm_up=30, elbow=60), C(chest_pop=12)),
            merge(B(arm_up=60, arm_fwd=90, elbow=20), C(chest_pop=14)),
            merge(L(arm_up=140, arm_fwd=20), R(arm_up=20, elbow=90, arm_fwd=60), C(chest_pop=10, head_turn=20)),
            merge(R(arm_up=68, arm_twist=-90, elbow=90), L(arm_up=40, arm_fwd=70, elbow=100), C(chest_pop=12))]
    neutral = C(chest_pop=-4)
    poses = []
    for _ in range(int(np.ceil(n / step)) + 1):
        poses += [jitter(rng, bank[int(rng.integers(len(bank)))])]
    keys = cycle(poses, n, step)
    if step >= 1.0:  # release between hits so each hit is a fresh accent
        keys = sorted(keys + [(t + step / 2, neutral) for t, _ in keys if t + step / 2 < n])
    return keys


@move("robot_arms", "arms", "robot arms")
def robot_arms(rng, n, step):
    a = merge(L(arm_up=30, arm_fwd=60, elbow=90), R(arm_up=10, arm_fwd=-30, elbow=90), C(head_turn=15), B(fist=0.7))
    return cycle([a, swap(a)], n, step)


@move("points", "arms", "points")
def points(rng, n, step):
    out = merge(L(arm_up=115, arm_fwd=40, elbow=0, point=1.0), C(head_turn=25, spine_twist=10))
    back = merge(L(arm_up=30, arm_fwd=70, elbow=110), R(arm_up=20, elbow=40))
    low = merge(R(arm_up=40, arm_fwd=60, point=1.0), C(head_turn=-15))
    return cycle([jitter(rng, out), back, jitter(rng, swap(out)), swap(back), jitter(rng, low)], n, max(step, 1.0))


@move("locks", "arms", "locks")
def locks(rng, n, step):
    lock = merge(B(arm_up=40, arm_fwd=40, elbow=120, collar_up=15), C(spine_fwd=8, head_nod=10))
    point = merge(L(arm_up=80, arm_fwd=70, point=1.0), R(arm_up=40, elbow=90, arm_fwd=40))
    return cycle([jitter(rng, lock), jitter(rng, point), lock, swap(point)], n, max(step, 1.0))


@move("arm_swing", "arms", "arm swings")
def arm_swing(rng, n, step):
    a = merge(L(arm_fwd=90, arm_up=30, elbow=35), R(arm_fwd=-90, arm_up=18, elbow=10), C(spine_twist=-6))
    return cycle([jitter(rng, a), jitter(rng, swap(a))], n, max(step, 1.0))


@move("groove_arms", "arms", "loose groove arms")
def groove_arms(rng, n, step):
    a = merge(B(elbow=70, arm_fwd=60, arm_up=18), L(arm_up=10), R(arm_up=-4), C(head_nod=8))
    return cycle([jitter(rng, a), jitter(rng, swap(a))], n, step)


@move("hands_front", "arms", "hands held in front")
def hands_front(rng, n, step):
    a = merge(B(arm_up=30, arm_fwd=75, elbow=95, arm_twist=-30), L(arm_up=12))
    return cycle([jitter(rng, a), jitter(rng, swap(a))], n, max(step, 1.0))


@move("toprock_arms", "arms", "toprock arm crosses")
def toprock_arms(rng, n, step):
    cross = merge(B(arm_fwd=115, arm_up=45, elbow=45, fist=0.6), C(spine_fwd=8))
    opened = merge(B(arm_up=55, arm_fwd=10, elbow=25), C(chest_pop=6))
    return cycle([jitter(rng, cross), jitter(rng, opened)], n, max(step, 1.0))


@move("jazz_arms", "arms", "jazz arms")
def jazz_arms(rng, n, step):
    a = merge(L(arm_up=120, arm_fwd=30), R(arm_up=20, arm_fwd=20), C(head_tilt=10, spine_side=8))
    return cycle([jitter(rng, a), jitter(rng, swap(a))], n, max(step, 1.0))


@move("port_de_bras", "arms", "port de bras")
def port_de_bras(rng, n, step):
    bas = B(elbow=25, arm_fwd=25, arm_up=4)
    first = B(arm_up=48, arm_fwd=78, elbow=35)
    fifth = B(arm_up=146, arm_fwd=35, elbow=30)
    second = merge(B(arm_up=62, arm_fwd=15, elbow=15, wrist_flex=-15), C(head_turn=15))
    return cycle([bas, jitter(rng, first), jitter(rng, fifth), jitter(rng, second)], n, max(step, 1.0))


@move("sleeve_circle", "arms", "sleeve-like arm circles")
def sleeve_circle(rng, n, step):
    seq = [merge(L(arm_up=30, arm_fwd=20, wrist_flex=30), R(arm_up=100, arm_fwd=40, wrist_flex=-30), C(spine_side=-8)),
           merge(L(arm_up=75, arm_fwd=85, elbow=20), R(arm_up=60, arm_fwd=-10), C(head_turn=10)),
           merge(L(arm_up=145, arm_fwd=30, wrist_flex=-40), R(arm_up=30, arm_fwd=20, wrist_flex=30), C(spine_side=10, head_tilt=8)),
           merge(L(arm_up=80, arm_fwd=-10, elbow=10), R(arm_up=75, arm_fwd=85, elbow=20), C(head_turn=-10))]
    return cycle([jitter(rng, s) for s in seq], n, max(step, 1.0))


@move("sleeve_toss", "arms", "sleeve tosses")
def sleeve_toss(rng, n, step):
    toss = merge(L(arm_up=125, arm_fwd=75, elbow=0, wrist_flex=-40), R(arm_up=20, arm_fwd=-20), C(spine_fwd=-8, head_nod=-8))
    gather = merge(L(arm_up=20, arm_fwd=50, elbow=60, wrist_flex=30), R(arm_up=10, elbow=30))
    return cycle([jitter(rng, toss), gather, jitter(rng, swap(toss)), swap(gather)], n, max(step, 1.0))


@move("peacock_arms", "arms", "peacock arms")
def peacock_arms(rng, n, step):
    a = merge(L(arm_up=62, arm_fwd=20, elbow=85, arm_twist=-80, wrist_flex=-55), R(arm_up=25, arm_fwd=-20, elbow=40, wrist_flex=-45),
              C(head_turn=20))
    return cycle([jitter(rng, a), jitter(rng, swap(a))], n, max(step, 1.0))


@move("waltz_frame", "arms", "ballroom frame")
def waltz_frame(rng, n, step):
    a = merge(L(arm_up=72, arm_fwd=25, elbow=95, arm_twist=-80), R(arm_up=58, arm_fwd=70, elbow=55), C(head_turn=15))
    b = merge(a, L(arm_up=6), R(arm_fwd=-8), C(head_turn=-5))
    return cycle([jitter(rng, a, 0.05), jitter(rng, b, 0.05)], n, max(2 * step, 1.5))


@move("salsa_styling", "arms", "salsa arm styling")
def salsa_styling(rng, n, step):
    a = merge(R(arm_up=145, arm_fwd=20, elbow=40, wrist_twist=60), L(arm_up=30, elbow=80, arm_fwd=40))
    b = merge(R(arm_up=120, arm_fwd=60, elbow=50, wrist_twist=-60), L(arm_up=20, elbow=70, arm_fwd=30))
    return cycle([jitter(rng, a), jitter(rng, b), jitter(rng, swap(a)), swap(b)], n, max(step, 1.0))


@move("krump_swings", "arms", "krump arm swings")
def krump_swings(rng, n, step):
    up = merge(B(arm_up=140, arm_fwd=30, elbow=30, fist=1.0), C(chest_pop=16, head_nod=-10))
    down = merge(L(arm_up=30, arm_fwd=110, elbow=20), R(arm_up=10, arm_fwd=-40), C(spine_fwd=18, chest_pop=-8))
    return cycle([jitter(rng, up), jitter(rng, down), up, swap(down)], n, step)


# ---------------------------------------------------------------- torso
@move("chest_pop", "torso", "chest pops")
def chest_pop(rng, n, step):
    return cycle([C(chest_pop=float(rng.uniform(14, 22))), C(chest_pop=-6)], n, step / 2 if step >= 1 else step)


@move("body_wave", "torso", "body waves")
def body_wave(rng, n, step):
    seq = [C(chest_pop=16, head_nod=-6), C(spine_fwd=14, pelvis_tilt=-10), C(pelvis_tilt=12, knee=12), C()]
    return cycle([jitter(rng, s) for s in seq], n, max(step / 2, 0.5))


@move("shoulder_bounce", "torso", "shoulder bounces")
def shoulder_bounce(rng, n, step):
    a = merge(L(collar_up=18, collar_fwd=10), R(collar_up=-4), C(spine_twist=6))
    return cycle([jitter(rng, a), jitter(rng, swap(a))], n, max(step / 2, 0.5))


@move("lean_back", "torso", "lean backs")
def lean_back(rng, n, step):
    return cycle([jitter(rng, C(spine_fwd=-20, head_nod=-10, chest_pop=8)), C(spine_fwd=8)], n, max(step, 1.0) * 2)


@move("hip_sway", "torso", "hip sways")
def hip_sway(rng, n, step):
    a = C(pelvis_side=float(rng.uniform(8, 12)), spine_side=-4, head_tilt=4)
    return cycle([a, swap(a)], n, max(step, 1.0))


@move("side_bend", "torso", "side bends")
def side_bend(rng, n, step):
    a = merge(C(spine_side=float(rng.uniform(20, 30)), head_tilt=10), R(arm_up=40))
    return cycle([a, C(), swap(a), C()], n, max(step, 1.0))


@move("torso_circle", "torso", "torso circles")
def torso_circle(rng, n, step):
    r = float(rng.uniform(14, 22))
    return cycle([C(spine_fwd=r), C(spine_side=r), C(spine_fwd=-r * 0.7), C(spine_side=-r)], n, max(step, 1.0))


@move("three_bends", "torso", "three-bend poses")
def three_bends(rng, n, step):
    a = C(pelvis_side=10, spine_side=-24, head_tilt=16, knee=10)
    return cycle([jitter(rng, a), C(knee=4), jitter(rng, swap(a)), C(knee=4)], n, max(step, 1.0))


@move("epaulement", "torso", "epaulement")
def epaulement(rng, n, step):
    a = C(spine_twist=14, head_turn=25, head_tilt=8)
    return cycle([jitter(rng, a), jitter(rng, swap(a))], n, max(2 * step, 2.0))


@move("sway_lean", "torso", "sway and lean")
def sway_lean(rng, n, step):
    a = C(spine_side=12, head_tilt=6, spine_fwd=-4)
    return cycle([jitter(rng, a), jitter(rng, swap(a))], n, max(2 * step, 1.5))


@move("jacking", "torso", "jacking")
def jacking(rng, n, step):
    return cycle([C(spine_fwd=float(rng.uniform(12, 18)), squat=8, head_nod=8), C(chest_pop=10, spine_fwd=-6)], n, 0.5)


# ---------------------------------------------------------------- hands
@move("finger_tut", "hands", "finger tutting")
def finger_tut(rng, n, step):
    seq = [merge(L(point=1, wrist_flex=40), R(vsign=1, wrist_flex=-30)), merge(B(spread=1), L(wrist_twist=60)),
           merge(R(point=1, wrist_flex=40), L(fist=1, wrist_dev=20)), merge(B(vsign=1), R(wrist_twist=-60))]
    return cycle(seq, n, max(step, 0.5))


@move("wrist_roll", "hands", "wrist rolls")
def wrist_roll(rng, n, step):
    return cycle([merge(B(wrist_twist=70, fist=1, wrist_flex=20)), merge(B(wrist_twist=-60, fist=1, wrist_flex=-20))],
                 n, max(step / 2, 0.5))


@move("finger_point", "hands", "finger points")
def finger_point(rng, n, step):
    return cycle([merge(L(point=1, wrist_flex=-20), R(fist=0.8)), merge(R(point=1, wrist_flex=-20), L(fist=0.8))],
                 n, max(step, 1.0))


@move("jazz_hands", "hands", "jazz hands")
def jazz_hands(rng, n, step):
    return cycle([B(spread=1.2, wrist_twist=35, wrist_flex=-25), B(spread=1.2, wrist_twist=-35, wrist_flex=-25)],
                 n, max(step / 2, 0.5))


@move("v_sign", "hands", "v-sign hands")
def v_sign(rng, n, step):
    return cycle([merge(L(vsign=1, wrist_flex=-25), R(spread=0.6)), merge(R(vsign=1, wrist_flex=-25), L(spread=0.6))],
                 n, max(step, 1.0))


@move("orchid_wrists", "hands", "orchid-hand wrist flicks")
def orchid_wrists(rng, n, step):
    return cycle([merge(B(orchid=1.0), L(wrist_flex=-45, wrist_twist=30), R(wrist_flex=35)),
                  merge(B(orchid=1.0), R(wrist_flex=-45, wrist_twist=-30), L(wrist_flex=35))], n, max(step, 1.0))


@move("soft_wrists", "hands", "soft wrist waves")
def soft_wrists(rng, n, step):
    return cycle([merge(B(soft=1.0), L(wrist_flex=30), R(wrist_flex=-25)),
                  merge(B(soft=1.0), R(wrist_flex=30), L(wrist_flex=-25))], n, max(step, 1.0))


@move("fist_pumps", "hands", "fist pumps")
def fist_pumps(rng, n, step):
    return cycle([merge(B(fist=1.0), L(wrist_flex=35, elbow=25)), merge(B(fist=1.0), R(wrist_flex=35, elbow=25))], n, step)


# ---------------------------------------------------------------- legs in place
LIFT = dict(hip_flex=28, knee=50, ankle=15)


@move("step_touch", "legs", "step touches")
def step_touch(rng, n, step):
    s = max(step, 0.5)
    w = float(rng.uniform(10, 16))
    seq = [C(), L(**LIFT, hip_abd=w / 2), L(hip_abd=w), merge(L(hip_abd=w / 2), R(**LIFT, hip_abd=-w / 3)),
           C(), R(**LIFT, hip_abd=w / 2), R(hip_abd=w), merge(R(hip_abd=w / 2), L(**LIFT, hip_abd=-w / 3))]
    return cycle(seq, n, s / 2)


@move("leg_hit", "legs", "leg hits")
def leg_hit(rng, n, step):
    return cycle([L(knee=28, hip_flex=14, ankle=10), C(), R(knee=28, hip_flex=14, ankle=10), C()], n, max(step / 2, 0.5))


@move("kick", "legs", "kicks")
def kick(rng, n, step):
    h = float(rng.uniform(55, 80))
    seq = [L(hip_flex=40, knee=75), L(hip_flex=h, knee=5, ankle=35), L(hip_flex=35, knee=70), C(),
           R(hip_flex=40, knee=75), R(hip_flex=h, knee=5, ankle=35), R(hip_flex=35, knee=70), C()]
    return cycle(seq, n, 0.5)


@move("stomp", "legs", "stomps")
def stomp(rng, n, step):
    up = L(hip_flex=float(rng.uniform(55, 70)), knee=85, hip_abd=8)
    down = C(squat=10, chest_pop=-6)
    return cycle([C(squat=6), up, down, swap(up)], n, 0.5, start=0.0)[::1]


@move("toprock", "legs", "toprock")
def toprock(rng, n, step):
    cross = merge(L(hip_flex=22, hip_abd=-16, hip_twist=20), C(pelvis_twist=-10))
    kick_out = R(hip_flex=38, knee=12, ankle=30, hip_abd=10)
    return cycle([merge(L(**LIFT)), cross, C(), kick_out, merge(R(**LIFT)), swap(cross), C(), swap(kick_out)], n, 0.5)


@move("lunge", "legs", "lunges")
def lunge(rng, n, step):
    a = merge(L(hip_flex=35, knee=28, ankle=-5), R(hip_flex=-22, knee=24, ankle=12), C(spine_fwd=6))
    return cycle([L(**LIFT), jitter(rng, a, 0.1), C(), C(), R(**LIFT), jitter(rng, swap(a), 0.1), C(), C()], n, max(step, 1.0) / 2)


@move("rise", "legs", "rises")
def rise(rng, n, step):
    return cycle([C(knee=10, squat=6), C(ankle=float(rng.uniform(22, 32)))], n, max(step, 1.0))


@move("tendu", "legs", "tendus")
def tendu(rng, n, step):
    fwd = L(hip_flex=28, ankle=50)
    side = L(hip_abd=26, ankle=50)
    back = L(hip_flex=-22, ankle=50)
    return cycle([fwd, C(), side, C(), back, C(), swap(side), C()], n, max(step, 1.0) / 2)


@move("releve", "legs", "releves")
def releve(rng, n, step):
    return cycle([C(squat=12), C(ankle=float(rng.uniform(32, 40))), C(ankle=38), C()], n, max(step, 1.0))


@move("box_step", "legs", "box steps")
def box_step(rng, n, step):
    w = float(rng.uniform(16, 22))
    seq = [merge(L(hip_flex=w), R(hip_flex=-w / 2)), merge(R(**LIFT), L(hip_flex=w / 2)), merge(R(hip_abd=w * 0.8)), L(**LIFT), C(ankle=18),
           C(), merge(R(hip_flex=-w), L(hip_flex=w / 2)), merge(L(**LIFT), R(hip_flex=-w / 2)), L(hip_abd=w * 0.8), R(**LIFT), C(ankle=18), C()]
    return cycle(seq, n, 0.5)


@move("shuffle", "legs", "shuffles")
def shuffle(rng, n, step):
    seq = [merge(L(hip_flex=30, knee=20), C(squat=6)), merge(L(hip_flex=-10, knee=45), C()),
           merge(R(hip_flex=30, knee=20), C(squat=6)), merge(R(hip_flex=-10, knee=45), C())]
    return cycle(seq, n, 0.5)


@move("heel_toe", "legs", "heel-toe swivels")
def heel_toe(rng, n, step):
    return cycle([C(hip_twist=22, squat=6), C(hip_twist=-14)], n, 0.5)


@move("salsa_basic", "legs", "salsa basic steps")
def salsa_basic(rng, n, step):
    w = float(rng.uniform(16, 22))
    seq = [merge(L(hip_flex=w), C(pelvis_side=-8)), merge(R(**LIFT), C(pelvis_side=6)), merge(C(pelvis_side=8)), C(),
           merge(R(hip_flex=-w), C(pelvis_side=8)), merge(L(**LIFT), C(pelvis_side=-6)), merge(C(pelvis_side=-8)), C()]
    return cycle(seq, n, 1.0)


# ---------------------------------------------------------------- travelling (direction: forward / back / side)
def gait(rng, n: int, step_beats: float, stride: float, lift: dict[str, float], direction: str,
         extra: dict[str, float] | None = None) -> list[Key]:
    """Alternating steps: each step = lift the free leg (half a step), place it ``stride`` degrees away.

    The grounding turns the support leg's sweep under the pelvis into root travel, so the feet stay planted.
    """
    extra = extra or {}
    sgn = -1.0 if direction == "back" else 1.0
    if direction in ("forward", "back"):
        a = merge(L(hip_flex=sgn * stride), R(hip_flex=-sgn * stride * 0.7), extra)
        seq = [merge(R(**lift)), a, merge(L(**lift)), swap(a)]
    else:  # sideways to the left: step out, close
        out = merge(L(hip_abd=stride), extra)
        seq = [merge(L(**lift, hip_abd=stride / 2)), out, merge(R(**lift, hip_abd=-stride / 2)), C()]
    return cycle([jitter(rng, s, 0.08) for s in seq], n, step_beats / 2)


@move("walk", "travel", "walking steps")
def walk(rng, n, step, direction="forward"):
    return gait(rng, n, 1.0, float(rng.uniform(18, 24)), LIFT, direction)


@move("side_glide", "travel", "side glides")
def side_glide(rng, n, step, direction="left"):
    return gait(rng, n, 1.0, float(rng.uniform(14, 18)), dict(hip_flex=12, knee=25), "left")


@move("scoobot", "travel", "scoobots")
def scoobot(rng, n, step, direction="forward"):
    return gait(rng, n, 1.0, 22, dict(hip_flex=55, knee=30, ankle=25), direction, C(spine_fwd=-8))


@move("running_man", "travel", "running man")
def running_man(rng, n, step, direction="forward"):
    return gait(rng, n, 1.0, 20, dict(hip_flex=60, knee=80), direction, C(squat=6))


@move("chasse", "travel", "chasses")
def chasse(rng, n, step, direction="forward"):
    return gait(rng, n, 1.0, 22, dict(hip_flex=20, knee=15, ankle=40), direction, C(ankle=10))


@move("float_walk", "travel", "gliding walk")
def float_walk(rng, n, step, direction="forward"):
    return gait(rng, n, 0.5, 12, dict(hip_flex=14, knee=22), direction, C(squat=6))


@move("stomp_walk", "travel", "stomping walk")
def stomp_walk(rng, n, step, direction="forward"):
    return gait(rng, n, 1.0, 22, dict(hip_flex=60, knee=85), direction, C(squat=12, chest_pop=8))


@move("box_step_travel", "travel", "travelling waltz steps")
def box_step_travel(rng, n, step, direction="forward"):
    return gait(rng, n, 1.0, 24, dict(hip_flex=18, knee=20, ankle=20), direction, C(ankle=10))


@move("toprock_travel", "travel", "travelling toprock")
def toprock_travel(rng, n, step, direction="forward"):
    return gait(rng, n, 1.0, 22, dict(hip_flex=40, knee=30, hip_abd=-10), direction, C(spine_fwd=6))


@move("shuffle_travel", "travel", "travelling shuffles")
def shuffle_travel(rng, n, step, direction="left"):
    return gait(rng, n, 0.5, 14, dict(hip_flex=25, knee=30), "left", C(squat=6))


# ---------------------------------------------------------------- turns (yaw keys are cumulative degrees)
@move("step_turn", "turn", "step turns")
def step_turn(rng, n, step):
    keys = gait(rng, min(n, 2), 1.0, 8, LIFT, "forward")
    keys = [(t, merge(p, C(yaw=360.0 * (t + 0.5) / 2))) for t, p in keys] + [(2.0, C(yaw=360.0))]
    return keys + [(t, C(yaw=360.0)) for t in np.arange(2.5, n, 0.5)]


@move("spin", "turn", "spins")
def spin(rng, n, step):
    turns = 2 if step <= 0.5 else 1
    keys = [(0.0, C(squat=14)), (0.5, merge(B(arm_up=30, arm_fwd=70, elbow=90), C(ankle=25, yaw=0)))]
    keys += [(0.5 + 0.5 * i, merge(B(arm_up=30, arm_fwd=70, elbow=90), C(ankle=25, yaw=180.0 * i))) for i in range(1, 2 * turns + 1)]
    end = 0.5 + turns
    keys += [(end + 0.5, C(squat=8, yaw=360.0 * turns))]
    keys += [(t, C(yaw=360.0 * turns)) for t in np.arange(end + 1.0, n, 0.5)]
    return keys


@move("pirouette", "turn", "pirouettes")
def pirouette(rng, n, step):
    turns = 2 if step <= 0.5 else 1
    passe = merge(L(hip_flex=70, hip_abd=30, knee=120, hip_twist=25, ankle=40), R(ankle=38), B(arm_up=45, arm_fwd=80, elbow=45))
    keys = [(0.0, C(squat=22)), (0.5, merge(passe, C(yaw=0)))]
    keys += [(0.5 + 0.5 * i, merge(passe, C(yaw=360.0 * i / 2))) for i in range(1, 2 * turns + 1)]
    end = 0.5 + turns
    keys += [(end + 0.5, C(squat=18, yaw=360.0 * turns))]
    keys += [(t, C(yaw=360.0 * turns)) for t in np.arange(end + 1.0, n, 1.0)]
    return keys


@move("slow_turn", "turn", "slow turns")
def slow_turn(rng, n, step):
    keys = gait(rng, n, 0.5, 6, dict(hip_flex=12, knee=20), "forward")
    return [(t, merge(p, C(yaw=360.0 * min(t / max(n - 0.5, 1.0), 1.0)))) for t, p in keys]


@move("waltz_turn", "turn", "waltz turns")
def waltz_turn(rng, n, step):
    keys = box_step(rng, n, step)
    return [(t, merge(p, C(yaw=180.0 * np.floor(t + 0.5) / 3.0 if t < n else 0.0))) for t, p in keys]


# ---------------------------------------------------------------- level changes
@move("get_low", "level", "getting low")
def get_low(rng, n, step):
    d = float(rng.uniform(45, 58))
    return cycle([C(squat=10), C(squat=d, spine_fwd=15), C(squat=d - 12, spine_fwd=12), C(squat=d, spine_fwd=15)], n, 1.0)


@move("footwork", "level", "floor-level footwork")
def footwork(rng, n, step):
    d = float(rng.uniform(52, 60))
    seq = [C(squat=d, spine_fwd=25), merge(C(squat=d - 10, spine_fwd=25), L(hip_abd=35, knee=-d * 0.8)),
           C(squat=d, spine_fwd=25), merge(C(squat=d - 10, spine_fwd=25), R(hip_abd=35, knee=-d * 0.8))]
    return cycle(seq, n, 0.5)


@move("plie", "level", "plies")
def plie(rng, n, step):
    return cycle([C(), C(squat=float(rng.uniform(30, 38))), C(), C(squat=float(rng.uniform(50, 58)), spine_fwd=-4)], n, 1.0)


@move("kneel_bend", "level", "deep kneeling bends")
def kneel_bend(rng, n, step):
    d = float(rng.uniform(48, 58))
    return cycle([C(), merge(C(squat=d, spine_fwd=28), B(arm_up=20, arm_fwd=60)), C(squat=d * 0.8, spine_fwd=10), C()], n, 1.0)


TRAVEL_DIRECTIONAL = {"walk", "scoobot", "running_man", "chasse", "float_walk", "stomp_walk", "box_step_travel",
                      "toprock_travel"}
