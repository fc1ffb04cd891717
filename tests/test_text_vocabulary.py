"""People's-words genre vocabulary (issue 17): the shipped file, query expansion, caption paraphrases.

The jargon queries below were written for this test from general dance knowledge; none come from the
evaluation sets in eval/queries (which must stay independent of the vocabulary).
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from encoders.errors import InputError
from encoders.text_vocabulary import (DISTINCTIVE_KINDS, DISTINCTIVE_WEIGHT, GenreVocabulary, Hit, QueryExpansion,
                                      _default_path, expand_query, normalise, paraphrase_caption, stem)
from generation.procedural.captions import captions_for, mentioned
from generation.procedural.plan import plan_corpus
from generation.procedural.primitives import MOVES
from generation.procedural.taxonomy import GENRES, genre

ROOT = Path(__file__).resolve().parents[1]
GENRE_NAMES = [g.name for g in GENRES]
# the search's list of dance-style names (indexer.index.query_gate reads it); read as a file, since encoders
# must not import indexer
DANCE_LEXICON = ROOT / "indexer" / "assets" / "dance_lexicon.json"


@pytest.fixture(scope="module")
def vocab() -> GenreVocabulary:
    return GenreVocabulary.load()


# ------------------------------------------------------------------------------------------ the file
def test_vocabulary_covers_the_18_genres_with_enough_terms(vocab):
    assert sorted(vocab.genres) == sorted(GENRE_NAMES) and len(vocab.genres) == 18
    for g in vocab.genres:
        assert len(vocab.entries_of(g, "terms")) >= 12, g
        assert vocab.entries_of(g, "moods") and vocab.entries_of(g, "misspellings"), g
    assert "independent" in vocab.about and "by hand" in vocab.about


def test_every_entry_points_to_a_known_genre_with_a_valid_weight(vocab):
    for e in vocab.entries:
        assert e.genre in GENRE_NAMES
        assert 0.0 < e.weight <= 1.0
        assert e.tokens and e.phrase == e.phrase.strip().lower()


def test_names_are_the_corpus_synonyms(vocab):
    """Expansion leaves a query alone when it names a genre the way captions do: the lists must agree."""
    for g in GENRES:
        names = {e.phrase for e in vocab.entries_of(g.name, "names")}
        assert set(g.words) <= names, g.name
        assert vocab.labels[g.name] in names


def test_misspellings_do_not_contain_a_name(vocab):
    """A 'misspelling' that contains a correct name would never trigger expansion: a useless entry."""
    for e in vocab.entries:
        if e.kind == "misspellings":
            assert not vocab.named_genres(e.phrase), e.phrase


def test_the_file_ships_as_package_data():
    assert _default_path().is_file()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "assets/*.json" in data["tool"]["setuptools"]["package-data"]["encoders"]


def test_paraphrase_entries_claim_no_tagged_attribute_or_move(vocab):
    """Phrases training paraphrases add must not state a tag value or a move the clip may lack.

    Moves are checked both ways: an added phrase must neither contain a corpus move ("fan kick" ~ "kicks")
    nor be part of one ("tutting" ~ "finger tutting").
    """
    moves = {tuple(stem(t) for t in normalise(m.label)) for m in MOVES.values()}
    moves |= {tuple(stem(t) for t in normalise(name.replace("_", " "))) for name in MOVES}

    def contains(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
        return any(a[i:i + len(b)] == b for i in range(len(a) - len(b) + 1))

    for e in vocab.entries:
        if not e.augment or e.kind not in ("terms", "moods", "misspellings"):
            continue
        stated = {k: v for k, v in mentioned(e.phrase).items() if not (k == "genre" and v == {e.genre})}
        assert not stated, (e.genre, e.phrase, stated)
        if e.kind == "misspellings":      # only ever stand in for the genre word
            continue
        for mv in moves:
            assert not contains(e.tokens, mv) and not contains(mv, e.tokens), (e.genre, e.phrase, mv)


def test_every_genre_has_paraphrase_material(vocab):
    for g in vocab.genres:
        assert sum(1 for e in vocab.entries_of(g, "terms") if e.augment and e.weight >= 0.6) >= 4, g
        assert any(e.augment for e in vocab.entries_of(g, "moods")), g


# ------------------------------------------------------------------------------------------ expansion
JARGON = {
    "popping": ["dime stops and tutting", "boogaloo with lots of waving", "like michael jackson doing the robot"],
    "locking": ["scooby doo and uncle sam points", "wrist twirls and skeeter rabbit", "soul train line"],
    "hiphop": ["cabbage patch into the running man", "stanky leg and the dougie", "old school party dances"],
    "breaking": ["toprock and windmills", "b-girl doing a baby freeze", "six-step into a headspin"],
    "urban": ["studio choreography for a music video", "heels class combo", "commercial dance like parris goebel"],
    "jazz": ["kick ball change and a fan kick", "bob fosse style", "broadway musical theatre number"],
    "kpop": ["idol choreography with a killing part", "bts dance cover", "random play dance fancam"],
    "hantang": ["long water sleeves from the tang dynasty", "court dance in hanfu", "ta ge stepping song"],
    "dai": ["peacock hands and an elephant-foot drum", "yang liping spirit of the peacock",
            "xishuangbanna water-splashing festival"],
    "miao": ["lusheng reed pipe and silver headdress", "bench dance from guizhou", "golden pheasant with silver horns"],
    "shenyun": ["butterfly twist and cloud hands", "classical chinese dance with tumbling",
                "lying fish pose and fanshen"],
    "ballet": ["plie and pirouettes at the barre", "arabesque en pointe", "fouettes from swan lake"],
    "waltz": ["box step with rise and fall", "natural turn and whisk", "viennese ballgown ball"],
    "krump": ["chest pops, stomps and jabs", "raw buck session", "big homie kill off"],
    "house": ["jacking and lofting", "loose legs and the farmer", "cutting shapes like frankie knuckles"],
    "salsa": ["cross-body lead on2", "dile que no and enchufla", "cuban casino rueda"],
    "tango": ["ochos and boleos in close embrace", "milonga with ganchos", "sacada and volcada at a milonga"],
    "dunhuang": ["reverse pipa and flying apsaras", "mural poses from the mogao caves",
                 "feitian with floating ribbons"],
}


@pytest.mark.parametrize("genre,query", [(g, q) for g, qs in JARGON.items() for q in qs])
def test_jargon_query_gets_its_genre_appended(vocab, genre, query):
    e = expand_query(query)
    assert isinstance(e, QueryExpansion) and e.original == query
    assert e.appended and e.appended[0] == genre, (query, e.genres)
    assert next(iter(e.genres)) == genre
    assert e.text.startswith(query) and e.text.endswith(vocab.caption_name(list(e.appended)))
    assert all(isinstance(h, Hit) and len(h) == 3 for h in e.hits)


def test_caption_style_of_the_appended_name():
    assert expand_query("toprock and windmills").text == "toprock and windmills, a breaking dance"
    assert expand_query("idol choreography.").text == "idol choreography, a k-pop dance"
    assert expand_query("commercial dance class").text.endswith(", an urban dance")


@pytest.mark.parametrize("query,genre", [
    ("windmils and hedspins", "breaking"),      # listed misspellings
    ("brakedance", "breaking"), ("krumpin", "krump"), ("balet", "ballet"), ("walz", "waltz"),
    ("tangoo", "tango"), ("hip hopp", "hiphop"), ("poppin", "popping"),
    ("arabesqeu", "ballet"),                     # unlisted one-edit typos of distinctive words
    ("lofitng and jacking", "house"), ("scoobott", "locking"), ("tuttting", "popping"), ("dunhaung murals", "dunhuang"),
])
def test_misspellings_are_tolerated(query, genre):
    e = expand_query(query)
    assert e.appended[:1] == (genre,), (query, e.genres)


@pytest.mark.parametrize("text", [
    "a cat sleeping on a sofa", "the quarterly sales report",
    # false friends: ordinary words one edit from (or equal to) vocabulary words
    "break a leg", "looking for a new job", "lookin good", "a mango smoothie", "the ballot was counted",
    "lock the door", "greatest hits of the eighties", "values and morals", "a horse in the garden",
    "trump rally", "bullet points", "tangy lemon sauce", "lifting weights", "", "   ",
])
def test_unrelated_texts_are_left_unchanged(text):
    e = expand_query(text)
    assert e.text == text and e.appended == ()


def test_unrelated_texts_have_no_hits():
    for text in ("a cat sleeping on a sofa", "the quarterly sales report", "break a leg", "a mango smoothie"):
        e = expand_query(text)
        assert e.hits == [] and e.genres == {}


@pytest.mark.parametrize("text", [
    "a fast breaking dance with windmills", "hip hop with the running man", "tango with ochos and ganchos",
    "K-Pop idol choreography", "krump with chest pops", "a slow waltz with a box step", "Flying apsaras dance",
])
def test_no_genre_is_appended_when_the_text_names_one(text):
    e = expand_query(text)
    assert e.text == text and e.appended == ()
    assert e.genres    # the genre is still reported


def test_weak_evidence_needs_dance_context():
    assert expand_query("the door locks").appended == ()          # a common word alone
    assert expand_query("a dance with locks").appended == ()      # ... even in dance context (a weak term)
    assert expand_query("points and wrist rolls").appended == ()  # two weak hits: 0.4, below MIN_SCORE ...
    assert expand_query("a dance with points and wrist rolls").appended == ("locking",)   # ... but in context
    assert expand_query("an aggressive dance").appended == ()     # a corpus attribute word, not a genre


def test_a_mood_never_decides_alone(vocab):
    """Moods are ordinary adjectives ("robotic", "raw", "cuban"): alone they must not make a text a dance,
    nor pick a genre for a text that is one; with a second hit for the genre they count."""
    for e in vocab.entries:
        if e.kind == "moods":
            assert expand_query(e.phrase).appended == (), e.phrase
    assert expand_query("battle").appended == ()
    assert expand_query("a raw dance").appended == ()
    assert expand_query("a girl crush choreography").appended == ()
    assert expand_query("a raw dance with jabs").appended == ("krump",)
    assert expand_query("a girl crush choreography with idols").appended == ("kpop",)


@pytest.mark.parametrize("text", [
    "a dramatic dance", "an elegant dance", "a graceful dance", "street dance", "a party dance",
    "a fun energetic dance", "a slow sad dance", "partner work dance", "ballroom dance",
])
def test_generic_dance_queries_stay_generic(text):
    """Ordinary words must not narrow a generic query to one genre, even though the text says "dance"."""
    e = expand_query(text)
    assert e.text == text and e.appended == (), e.genres


def _contains(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return any(a[i:i + len(b)] == b for i in range(len(a) - len(b) + 1))


def test_weak_entries_never_decide_alone(vocab):
    """Every mood, comparison and term below DISTINCTIVE_WEIGHT, alone in "a {phrase} dance", leaves it as it
    is, unless the words also match a distinctive entry ("a commercial dance" is "commercial dance",
    "peacock arms" contains "peacock")."""
    strong = [e.tokens for e in vocab.entries if e.kind in DISTINCTIVE_KINDS and e.weight >= DISTINCTIVE_WEIGHT]
    checked = 0
    for e in vocab.entries:
        if e.kind not in ("moods", "comparisons") and e.weight >= DISTINCTIVE_WEIGHT:
            continue
        query = f"a {e.phrase} dance"
        toks = tuple(stem(t) for t in normalise(query))
        if any(_contains(toks, s) for s in strong):
            continue
        checked += 1
        assert expand_query(query).appended == (), (e.genre, e.kind, e.phrase, expand_query(query).genres)
    assert checked > 250


def test_two_independent_hits_decide_but_one_repeated_does_not():
    assert expand_query("old school party dances").appended == ("hiphop",)      # 0.5 + 0.5
    assert expand_query("a dance with locks and more locks").appended == ()     # one phrase twice


def test_close_genres_are_both_appended():
    e = expand_query("ochos and a cross-body lead")
    assert e.appended == ("salsa", "tango")
    assert e.text == "ochos and a cross-body lead, a salsa or tango dance"


def test_a_weak_phrase_does_not_cancel_a_strong_word_inside_it():
    """The longest phrase decides which genres the words point to, the strongest entry inside it how surely.

    "finger tutting" and "peacock arms" are corpus moves of two genres each (popping and urban, dai and
    dunhuang), listed at a low weight under both; "tutting" and "peacock" alone are strong. The phrase keeps
    its genres tied (appending only popping would push the corpus's urban captions to the wrong genre).
    """
    e = expand_query("finger tutting")
    assert e.appended == ("popping", "urban") and e.genres == {"popping": 0.9, "urban": 0.9}
    assert Hit("finger tutting", "tutting", "popping") in e.hits
    e = expand_query("peacock arms")
    assert e.appended == ("dai", "dunhuang") and e.genres == {"dai": 0.8, "dunhuang": 0.8}
    assert Hit("peacock arms", "peacock", "dai") in e.hits
    assert expand_query("a dance full of finger tutting").appended[0] == "popping"
    # entries inside the phrase count only for the phrase's own genres: "water sleeves" is shenyun too
    assert expand_query("long water sleeves").appended == ("hantang",)
    assert expand_query("soul train line").appended == ("locking",)   # a comparison containing a term


# ------------------------------------------------------------------------------------------ other styles
def _forms(phrase: str) -> set[str]:
    """A style name as the query gate matches it: words (plural-insensitive, as this module compares them),
    also without a trailing "dance"/"dancing", and run together ("crip walk" = "cripwalk", "cha-cha" =
    "chacha")."""
    words = normalise(phrase)
    variants = [words]
    if len(words) > 1 and words[-1] in ("dance", "dances", "dancing"):
        variants.append(words[:-1])
    out = set()
    for v in variants:
        toks = [stem(t) for t in v]
        out |= {" ".join(toks), "".join(toks)}
    return out


def test_no_phrase_names_a_style_the_catalog_lacks(vocab):
    """The query gate calls a query naming a style of its lexicon that the catalog lacks a gap ("bachata",
    "foxtrot", "crip walk"): the vocabulary must not point such a name to a catalog genre. A lexicon name is
    allowed only as one of the genre's own names ("peacock dance" for dai, and so "peacock")."""
    lexicon = json.loads(DANCE_LEXICON.read_text(encoding="utf-8"))["names"]
    assert len(lexicon) > 100
    by_form: dict[str, set[str]] = {}
    for name in lexicon:
        for f in _forms(name):
            by_form.setdefault(f, set()).add(name)
    offending = []
    for g in vocab.genres:
        own = set().union(*(_forms(e.phrase) for e in vocab.entries_of(g, "names")))
        for e in vocab.entries_of(g):
            styles = set().union(*(by_form.get(f, set()) for f in _forms(e.phrase)))
            offending += [(g, e.kind, e.phrase, n) for n in sorted(styles) if not _forms(n) & own]
    assert not offending, offending


@pytest.mark.parametrize("text", ["bachata", "mambo", "merengue", "rumba ballroom dance", "ballroom foxtrot",
                                  "charleston", "crip walk", "c-walk", "lindy hop", "a cha-cha routine", "cumbia step",
                                  "melbourne shuffle", "a disco dance"])
def test_a_style_the_catalog_lacks_is_not_expanded(text):
    e = expand_query(text)
    assert e.text == text and e.appended == (), e.genres


def test_no_lexicon_style_is_expanded():
    for name in json.loads(DANCE_LEXICON.read_text(encoding="utf-8"))["names"]:
        for text in (name, f"a {name} routine"):
            assert expand_query(text).appended == (), (text, expand_query(text).genres)


def test_expansion_is_deterministic_and_idempotent():
    q = "toprock, uprock and a freeze"
    a, b = expand_query(q), expand_query(q)
    assert a == b
    assert expand_query(a.text).text == a.text


def test_accents_hyphens_and_case_are_ignored():
    assert expand_query("PLIÉ and Jeté").appended == ("ballet",)
    assert expand_query("B Boy top-rock").appended == ("breaking",)
    assert expand_query("chassé").genres == expand_query("chasse").genres
    assert set(expand_query("chasse").genres) == {"jazz", "ballet"}


def _corpus_captions(n_clips: int = 180) -> list[tuple[str, str]]:
    """(caption, genre) pairs from the procedural corpus's own grammar, train and held-out templates."""
    out = []
    for spec in plan_corpus(n_clips, seed=11):
        g = genre(spec.genre)
        labels = lambda names: [MOVES[n].label for n in names]  # noqa: E731
        tags = {"genre": spec.genre, "tempo": spec.tempo, "rhythm": spec.rhythm, "valence": spec.valence,
                "instrument": spec.instrument, "energy": spec.energy, "fluidity": spec.fluidity,
                "intensity": spec.intensity, "spatial": spec.spatial, "emphasis": spec.emphasis,
                "arm_moves": labels(g.arm_moves), "torso_moves": labels(g.torso_moves),
                "hand_moves": labels(g.hand_moves),
                "leg_moves": labels(g.travel_moves + g.turn_moves + g.level_moves + g.leg_moves)}
        for held_out in (False, True):
            rng = np.random.default_rng([spec.index, held_out])
            out += [(c, spec.genre) for c in captions_for(tags, rng, held_out=held_out, count=5)]
    return out


def test_caption_like_queries_are_rarely_expanded_and_then_rightly():
    """Queries in the corpus's own words (the benchmark's) must not be pushed to a wrong genre.

    The corpus already teaches its move and attribute words; words it shares across genres ("chest pops",
    "crisp hits", "footwork-heavy") carry weights too low to append a genre on their own.
    """
    pairs = _corpus_captions()
    expanded = [(c, g, expand_query(c).appended) for c, g in pairs]
    appended = [x for x in expanded if x[2]]
    wrong = [x for x in appended if x[1] not in x[2]]
    assert len(appended) <= 0.05 * len(pairs)
    assert len(wrong) <= 0.005 * len(pairs), wrong[:5]


# ------------------------------------------------------------------------------------------ paraphrase
def _captions_for(g) -> list[str]:
    w = g.words
    return [f"a fast {w[0]} dance with sharp accents", f"{w[-1]} with lots of turns, to piano music",
            f"dancer doing {'an' if w[1][0] in 'aeiou' else 'a'} calm {w[1]} routine on the spot",
            "a slow melancholic sequence with flowing transitions", "high-energy piece driven by the legs"]


_ARTICLES = {"a", "an"}


def test_paraphrase_keeps_every_non_genre_word_and_the_attributes(vocab):
    for g in GENRES:
        name_tokens = {t for w in g.words for t in normalise(w)}
        for cap in _captions_for(g):
            keep = [t for t in normalise(cap) if t not in name_tokens and t not in _ARTICLES]
            stated = {k: v for k, v in mentioned(cap).items() if k != "genre"}
            for seed in range(25):
                out = paraphrase_caption(cap, g.name, np.random.default_rng(seed))
                assert out.strip() and out != cap, (cap, out)
                toks = normalise(out)
                pos = 0          # the kept words appear in order
                for t in keep:
                    assert t in toks[pos:], (cap, out, t)
                    pos = toks.index(t, pos) + 1
                now = {k: v for k, v in mentioned(out).items() if k != "genre"}
                assert now == stated, (cap, out)
                assert mentioned(out).get("genre", {g.name}) <= {g.name}, (cap, out)


def test_paraphrases_of_corpus_captions_keep_their_attributes(vocab):
    for i, (cap, g) in enumerate(_corpus_captions(72)):
        out = vocab.paraphrase_caption(cap, g, np.random.default_rng(i))
        assert out.strip()
        before = {k: v for k, v in mentioned(cap).items() if k != "genre"}
        assert {k: v for k, v in mentioned(out).items() if k != "genre"} == before, (cap, out)


def test_paraphrase_is_deterministic_for_a_seed_and_varied_across_seeds(vocab):
    cap = "a fast breaking dance with sharp accents"
    a = [vocab.paraphrase_caption(cap, "breaking", np.random.default_rng(s)) for s in range(20)]
    b = [vocab.paraphrase_caption(cap, "breaking", np.random.default_rng(s)) for s in range(20)]
    assert a == b
    assert len(set(a)) >= 10
    rng = np.random.default_rng(3)
    seq = [vocab.paraphrase_caption(cap, "breaking", rng) for _ in range(5)]
    rng = np.random.default_rng(3)
    assert seq == [vocab.paraphrase_caption(cap, "breaking", rng) for _ in range(5)]


def test_paraphrase_uses_people_words(vocab):
    """Over many draws: typos of the genre word, the genre word swapped for jargon, moods, jargon appended."""
    cap = "a fast krump dance with sharp accents"
    outs = [vocab.paraphrase_caption(cap, "krump", np.random.default_rng(s), p_replace=1.0) for s in range(40)]
    assert any("krump" not in o.split() and expand_query(o).appended == ("krump",) for o in outs)   # typo
    assert any("krump" not in o and ", with " in o for o in outs)                                   # jargon
    kept = [vocab.paraphrase_caption(cap, "krump", np.random.default_rng(s), p_replace=0.0) for s in range(40)]
    assert all(" krump dance" in o for o in kept)
    moods = {e.phrase for e in vocab.entries_of("krump", "moods") if e.augment}
    assert any(any(m in o for m in moods) for o in kept)
    assert any(", with " in o for o in kept)


def test_jargon_paraphrase_fixes_the_article(vocab):
    outs = {vocab.paraphrase_caption("an urban routine that is energetic", "urban", np.random.default_rng(s),
                                     p_replace=1.0) for s in range(30)}
    assert any(o.startswith("a routine that is energetic, with ") for o in outs)
    assert not any(o.startswith("an routine") for o in outs)


def test_paraphrase_never_returns_an_empty_string(vocab):
    for g in vocab.genres:
        for cap in ("", "   ", vocab.labels[g], "dance"):
            for s in range(5):
                assert vocab.paraphrase_caption(cap, g, np.random.default_rng(s)).strip()


def test_paraphrase_rejects_an_unknown_genre(vocab):
    with pytest.raises(InputError, match="genre"):
        vocab.paraphrase_caption("a dance", "polka", np.random.default_rng(0))


# ------------------------------------------------------------------------------------------ malformed files
def _good() -> dict:
    return {"about": "test vocabulary", "context": ["dance"], "false_friends": [],
            "genres": {"krump": {"label": "krump", "names": ["krump"],
                                 "terms": ["buck", {"phrase": "jabs", "weight": 0.5}],
                                 "moods": ["raw"], "misspellings": ["krumpp"]}}}


def _write(tmp_path: Path, data) -> Path:
    p = tmp_path / "vocab.json"
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def test_a_small_valid_file_loads(tmp_path):
    v = GenreVocabulary.load(_write(tmp_path, _good()))
    assert v.genres == ("krump",)
    assert v.expand_query("buck and jabs").text == "buck and jabs, a krump dance"


def _add_term(item):
    return lambda d: d["genres"]["krump"]["terms"].append(item)


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d.update(colour="red"), "colour"),
    (lambda d: d["genres"]["krump"].update(steps=["x"]), "genres.krump.steps"),
    (lambda d: d["genres"]["krump"].update(terms=[]), "genres.krump.terms"),
    (lambda d: d["genres"]["krump"].update(names=[]), "genres.krump.names"),
    (_add_term({"phrase": "stomps", "weight": 1.5}), "genres.krump.terms[2].weight"),
    (_add_term({"phrase": "stomps", "weight": 0}), "genres.krump.terms[2].weight"),
    (_add_term({"phrase": "stomps", "weight": "high"}), "genres.krump.terms[2].weight"),
    (_add_term({"phrase": "stomps", "colour": 1}), "genres.krump.terms[2].colour"),
    (_add_term(""), "genres.krump.terms[2].phrase"),
    (_add_term(7), "genres.krump.terms[2]"),
    (_add_term("Buck"), "genres.krump.terms[2]"),          # a duplicate of "buck"
    (lambda d: d["genres"]["krump"]["moods"].append({"phrase": "gritty", "augment": "yes"}),
     "genres.krump.moods[1].augment"),
    (lambda d: d["genres"]["krump"].update(label="krumping"), "genres.krump.label"),
    (lambda d: d.pop("about"), "about"),
    (lambda d: d.update(genres={}), "genres"),
    (lambda d: d.update(context="dance"), "context"),
])
def test_malformed_files_name_the_field(tmp_path, mutate, field):
    data = _good()
    mutate(data)
    p = _write(tmp_path, data)
    with pytest.raises(InputError) as err:
        GenreVocabulary.load(p)
    assert err.value.field == field
    assert f"field '{field}'" in str(err.value) and str(p) in str(err.value)


def test_unreadable_files_name_the_file(tmp_path):
    p = _write(tmp_path, "{not json")
    with pytest.raises(InputError, match="not valid JSON") as err:
        GenreVocabulary.load(p)
    assert str(p) in str(err.value)
    with pytest.raises(InputError, match="cannot read"):
        GenreVocabulary.load(tmp_path / "missing.json")


def test_default_vocabulary_is_cached():
    assert GenreVocabulary.load() is GenreVocabulary.load()
