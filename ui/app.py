"""DanceSearch web UI (a Streamlit script): search dance clips by description, watch them with their music.

Run it with ``dancesearch ui --api-url URL`` (or ``streamlit run ui/app.py -- --api-url URL``). It talks
to the search API only over HTTP, through :mod:`ui.api_client`, like any platform would.

Page flow: search box (+ example queries) and sidebar filters (genres, tempo range, number of
results) -> one API call -> result cards rendered text-first (so the first results show at once),
then each card's skeleton player is filled from the cached media (and, when its "Watch as video" toggle is
on, the clip's video rendered by the API: ``ui/video.py``) -> refinement bar (tempo, body
part, energy, genre) and "More like this" buttons that re-query and update the list in place.

Search outcomes (issue 15): a ``gap`` (a dance the catalog cannot serve) opens the gap panel above the
closest clips (``ui/generate_panel.py``: proposed genre, music, Generate, progress, the generated dance in
the same player, downloads); a ``not_dance`` text gets a friendly message instead of results. The UI is a
trusted client of its own API: ``DANCESEARCH_API_KEY`` (when set) is sent on the generation routes.

Dataset text (captions, tags, genre names, clip keys, the API's explanations that quote them) is never
rendered as Markdown: a caption like ``![x](http://host/a.png)`` would otherwise make every viewer's
browser fetch that URL. Captions go through ``st.text``; short values inside app-made Markdown lines go
through :func:`md_escape`.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from typing import Mapping, Sequence

import streamlit as st

from ui.api_client import (ApiClient, ApiClientSettings, ApiError, ApiRequestError, ApiUnreachable, ClipResult,
                           SearchRequest, SearchResponse, DEFAULT_API_URL)
from ui.generate_panel import PanelCallbacks, gap_panel, not_dance_message
from ui.player import PlayerSettings, audio_data_url, encode_motion, player_html
from ui.refine import (BODY_PART_PHRASES, ENERGY_PHRASES, EXAMPLE_QUERIES, MAX_REFINEMENT_CHARS, TEMPO_RANGES,
                       Refinement, apply_refinement, filter_results, slider_to_bpm, tempo_class)
from ui.video import (DANCER_CAPTION, DANCER_SECONDS, PHOTO_HELP, PHOTO_LABEL, VIDEO_HELP, VIDEO_LABEL,
                      dancer_video_source, show_video, video_source)
from search_api.schemas import MAX_QUERY

#: The query box's limit: the API's (search_api.schemas.MAX_QUERY) minus what the refinement bar may append,
#: so a refined query is never refused as too long.
QUERY_MAX_CHARS = MAX_QUERY - MAX_REFINEMENT_CHARS

API_URL_ENV = "DANCESEARCH_API_URL"
PUBLIC_API_URL_ENV = "DANCESEARCH_PUBLIC_API_URL"
API_KEY_ENV = "DANCESEARCH_API_KEY"   # the API's key: the UI sends it on the write routes (generate, cancel)


@dataclass(frozen=True)
class UiSettings:
    """Where the API is and how the page looks; from ``-- --api-url`` args, then the environment."""

    api_url: str = DEFAULT_API_URL
    public_api_url: str | None = None   # when set, the browser loads audio from here instead of data: URLs
    default_k: int = 10
    max_k: int = 50
    columns: int = 2
    bpm_bounds: tuple[int, int] = (40, 200)
    player_height: int = 320


def load_settings(argv: Sequence[str] | None = None) -> UiSettings:
    """Parse the script's own arguments (``streamlit run app.py -- --api-url URL``); unknown ones are ignored
    so the script also runs under test runners whose argv is not ours."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--api-url", default=None)
    parser.add_argument("--public-api-url", default=None)
    parser.add_argument("--columns", type=int, default=None)
    args, _ = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    api_url = args.api_url or os.environ.get(API_URL_ENV) or DEFAULT_API_URL
    public = args.public_api_url or os.environ.get(PUBLIC_API_URL_ENV) or None
    return UiSettings(api_url=api_url.rstrip("/"), public_api_url=public.rstrip("/") if public else None,
                      columns=max(1, min(4, args.columns or UiSettings.columns)))


# --- cached access to the API ----------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def get_client(api_url: str) -> ApiClient:
    """One pooled HTTP client per API URL for the whole server (connections are reused across reruns); it
    carries the API key from ``DANCESEARCH_API_KEY`` (the UI is a trusted client of its own API)."""
    return ApiClient(ApiClientSettings(base_url=api_url, api_key=os.environ.get(API_KEY_ENV) or None))


@st.cache_data(ttl=60, show_spinner=False)
def cached_genres(api_url: str) -> list[tuple[str, int]]:
    return get_client(api_url).genres()


@st.cache_data(ttl=120, max_entries=200, show_spinner=False)
def cached_search(api_url: str, request: SearchRequest) -> SearchResponse:
    """Reruns (any widget click) must not re-query: same request within two minutes -> same answer."""
    return get_client(api_url).search(request)


@st.cache_data(ttl=120, max_entries=200, show_spinner=False)
def cached_similar(api_url: str, clip_id: int, k: int) -> SearchResponse:
    return get_client(api_url).similar(clip_id, k)


@st.cache_data(max_entries=300, show_spinner=False)
def cached_player(api_url: str, clip_id: int, audio_path: str | None, audio_url: str | None,
                  title: str, height: int) -> str:
    """The finished player HTML of one clip (motion fetched, packed, audio embedded), keyed by API URL + clip
    id; clips are immutable in a workspace so this never needs to expire."""
    client = get_client(api_url)
    motion = encode_motion(client.motion_json(clip_id), PlayerSettings(height=height))
    src = audio_url
    if src is None and audio_path:
        media = client.media(audio_path)
        src = audio_data_url(media.content, media.content_type)
    return player_html(motion, src, title=title, settings=PlayerSettings(height=height), player_id=f"clip{clip_id}")


@st.cache_data(max_entries=20, show_spinner=False)
def cached_video(api_url: str, clip_id: int, public_api_url: str | None) -> str | bytes:
    """The "Watch as video" source of one clip (its public URL, or the MP4 bytes when the browser cannot reach
    the API: see ui/video.py); failures are not cached, so a retry asks again."""
    return video_source(get_client(api_url), clip_id, public_api_url)


@st.cache_data(max_entries=20, show_spinner=False)
def cached_dancer_video(api_url: str, clip_id: int, photo: bytes, photo_name: str,
                        public_api_url: str | None) -> str | bytes:
    """The person of ``photo`` performing clip ``clip_id`` (a ``POST /v1/videos`` job, see ui/video.py), once
    per clip and photo; failures are not cached."""
    bar = st.progress(0.0, text="Making the video of your dancer…")
    try:
        return dancer_video_source(get_client(api_url), clip_id, photo, photo_name, public_api_url,
                                   on_progress=lambda f, stage: bar.progress(min(max(f, 0.0), 1.0), text=stage))
    finally:
        bar.empty()


# --- session state ---------------------------------------------------------------------------------
REFINE_KEYS = ("ref_tempo", "ref_body", "ref_energy", "ref_genres")


def _init_state() -> None:
    st.session_state.setdefault("query", "")
    st.session_state.setdefault("q_input", "")
    st.session_state.setdefault("more_like", None)    # (clip id, label) or None


def _submit_query() -> None:
    st.session_state.query = st.session_state.q_input.strip()
    st.session_state.more_like = None
    st.session_state.pop("gen_poll", None)   # a running job's progress belongs to the query it was made for
    _clear_refinement()


def _use_example(text: str) -> None:
    st.session_state.q_input = text
    _submit_query()


def _clear_refinement() -> None:
    for key in REFINE_KEYS:
        st.session_state.pop(key, None)


def _more_like(clip: ClipResult) -> None:
    label = clip.caption or clip.key
    st.session_state.more_like = (clip.id, f"#{clip.id} {clip.genre or ''}: {label}".strip())


def _back_to_search() -> None:
    st.session_state.more_like = None


def _refinement_from_state() -> Refinement:
    return Refinement(tempo=st.session_state.get("ref_tempo"), body_part=st.session_state.get("ref_body"),
                      energy=st.session_state.get("ref_energy"), genres=tuple(st.session_state.get("ref_genres") or ()))


# --- page pieces -----------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()!|~$])")


def md_escape(text: object) -> str:
    """``text`` made inert inside a Markdown line (never at its start): the characters that make links,
    images, emphasis, code, HTML, LaTeX and Streamlit directives (``:red[..]`` needs a ``[``) are
    backslash-escaped, and line breaks become spaces, so no block structure can start either."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def sidebar(settings: UiSettings) -> tuple[list[str], tuple[float | None, float | None], int, int]:
    """Filters; returns (genres, bpm range, k, columns). Raises ApiError when the API cannot list genres."""
    with st.sidebar:
        st.header("Filters")
        genres_with_counts = cached_genres(settings.api_url)
        names = [g for g, _ in genres_with_counts]
        counts = dict(genres_with_counts)
        genres = st.multiselect("Genres", names, key="genres", format_func=lambda g: f"{g} ({counts.get(g, 0)})",
                                placeholder="any genre")
        lo, hi = settings.bpm_bounds
        bpm = st.slider("Tempo (BPM)", min_value=lo, max_value=hi, value=(lo, hi), step=1, key="bpm",
                        help="Clips without a known BPM are excluded once you narrow the range.")
        k = st.slider("Number of results", min_value=1, max_value=settings.max_k, value=settings.default_k, key="k")
        layout = st.radio("Layout", ["grid", "list"], horizontal=True, key="layout")
        st.divider()
        st.file_uploader(PHOTO_LABEL, type=["jpg", "jpeg", "png", "webp"], key="dancer_photo", help=PHOTO_HELP)
        st.divider()
        st.caption(f"Search API: `{settings.api_url}`")
    return genres, slider_to_bpm(bpm, (lo, hi)), k, (settings.columns if layout == "grid" else 1)


def search_box() -> None:
    with st.form("search", border=False):
        c1, c2 = st.columns([6, 1], vertical_alignment="bottom")
        c1.text_input("Describe a dance", key="q_input", max_chars=QUERY_MAX_CHARS,
                      placeholder="e.g. a slow gentle waltz that travels in circles",
                      help=f"Up to {QUERY_MAX_CHARS} characters: the search API takes {MAX_QUERY}, and the "
                           f"refinement bar may add up to {MAX_REFINEMENT_CHARS}.")
        c2.form_submit_button("Search", type="primary", on_click=_submit_query, use_container_width=True)
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.caption("Try:", width="content")
        for i, text in enumerate(EXAMPLE_QUERIES):
            st.button(text, key=f"example_{i}", on_click=_use_example, args=(text,), type="tertiary")


def refinement_bar(result_genres: Sequence[str], all_genres: Sequence[str]) -> None:
    """Constraints the user adds after the first results; each change re-runs the search."""
    with st.container(border=True):
        top = st.columns([5, 1], vertical_alignment="center")
        top[0].markdown("**Refine these results**: add a constraint and the list updates.")
        top[1].button("Clear", key="ref_clear", on_click=_clear_refinement, use_container_width=True)
        c1, c2 = st.columns(2)
        c1.segmented_control("Tempo", list(TEMPO_RANGES), key="ref_tempo",
                             format_func=lambda t: f"{t} ({_bpm_label(TEMPO_RANGES[t])})")
        c2.segmented_control("Energy", list(ENERGY_PHRASES), key="ref_energy")
        c3, c4 = st.columns(2)
        c3.pills("Body part", list(BODY_PART_PHRASES), key="ref_body")
        # a stable option list (the API's genres, most frequent first): options that change between reruns would
        # drop the user's selection; result genres the API does not list are appended
        options = list(dict.fromkeys([*all_genres, *result_genres]))
        c4.multiselect("Genre", options, key="ref_genres", placeholder="only these genres")


def _bpm_label(rng: tuple[float | None, float | None]) -> str:
    lo, hi = rng
    return f"≤ {hi:.0f} BPM" if lo is None else f"≥ {lo:.0f} BPM" if hi is None else f"{lo:.0f}–{hi:.0f} BPM"


def result_card(clip: ClipResult, api_url: str, slot_cols: int) -> tuple["st.delta_generator.DeltaGenerator",
                                                                          "st.delta_generator.DeltaGenerator"]:
    """Text of one result; returns the empty slots the player and the video (when asked for) are rendered into
    afterwards."""
    with st.container(border=True):
        head = [f"**#{clip.rank}**" if clip.rank is not None else f"**#{clip.id}**"]
        if clip.score is not None:
            head.append(f"score {clip.score:.3f}")
        head.append(f"**{md_escape(clip.genre) if clip.genre else 'unknown genre'}**")
        if clip.bpm is not None:
            head.append(f"{clip.bpm:.0f} BPM ({tempo_class(clip.bpm)})")
        if clip.duration_s is not None:
            head.append(f"{clip.duration_s:.1f} s")
        st.markdown(" · ".join(head))
        if clip.caption:
            st.text(clip.caption)        # dataset text: never Markdown
        else:
            st.markdown("_no caption_")
        tags = badge_tags(clip.tags)
        if tags:
            st.markdown(" ".join(f":gray-badge[{k}: {md_escape(v)}]" for k, v in tags))
        if clip.explanation.get("text"):
            st.caption(f"Why: {md_escape(clip.explanation['text'])}")
        slot = st.empty()
        slot.caption("loading the clip…")
        b1, b2 = st.columns(2)
        b1.button("More like this", key=f"more_{clip.id}", on_click=_more_like, args=(clip,), use_container_width=True)
        with b2.popover("Details & downloads", use_container_width=True):
            details(clip, api_url)
        st.toggle(VIDEO_LABEL, key=f"video_{clip.id}", help=VIDEO_HELP)
        video_slot = st.empty()
    return slot, video_slot


# Tags worth a badge on the card (the rest are in Details): what a dancer scans a result list for.
BADGE_TAGS = ("tempo", "energy", "emphasis", "body_part", "fluidity", "spatial", "intensity")


def badge_tags(tags: Mapping[str, object]) -> list[tuple[str, str]]:
    """(name, value) of the card's badges; list values are joined, brackets would break badge markdown."""
    out = []
    for key in BADGE_TAGS:
        value = tags.get(key)
        if value in (None, "", [], ()):
            continue
        text = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        out.append((key, text.replace("[", "(").replace("]", ")")))
    return out


def details(clip: ClipResult, api_url: str) -> None:
    st.text(f"{clip.key} (clip id {clip.id})")
    meta = {"dancer": clip.dancer, "split": clip.split, "duration_s": clip.duration_s, "bpm": clip.bpm,
            "genre": clip.genre, "score": clip.score, "tags": dict(clip.tags)}
    st.json({k: v for k, v in meta.items() if v is not None}, expanded=False)
    if clip.captions:
        st.markdown("**Captions**")
        st.text("\n".join(f"- {' '.join(c.split())}" for c in clip.captions))
    download_buttons(clip, api_url)


def download_buttons(clip: ClipResult, api_url: str, key_prefix: str = "") -> None:
    """Motion (npz, BVH) and audio downloads of a clip; bytes are fetched only when the user clicks."""
    client = get_client(api_url)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", clip.key).strip("_") or f"clip{clip.id}"
    prefix = f"{key_prefix}_" if key_prefix else ""
    for label, media_key, ext, mime in (("motion (.npz)", "motion_npz", "npz", "application/octet-stream"),
                                        ("motion (.bvh)", "motion_bvh", "bvh", "text/plain"),
                                        ("audio", "audio", "ogg", "audio/ogg")):
        path = clip.media.get(media_key)
        if not path:
            continue
        st.download_button(f"Download {label}", data=lambda p=path: client.media(p).content,
                           file_name=f"{stem}.{ext}", mime=mime, key=f"dl_{prefix}{media_key}_{clip.id}",
                           on_click="ignore")


def render_player(slot: "st.delta_generator.DeltaGenerator", clip: ClipResult, settings: UiSettings,
                  title: str | None = None) -> None:
    audio_path = clip.media.get("audio")
    audio_url = (f"{settings.public_api_url}{audio_path}" if settings.public_api_url and audio_path else None)
    try:
        page = cached_player(settings.api_url, clip.id, audio_path, audio_url,
                             title or f"#{clip.rank or clip.id} {clip.genre or ''}", settings.player_height)
    except ApiError as exc:
        slot.warning(f"Could not load this clip's media: {exc}")
        return
    with slot.container():
        st.iframe(page, height=settings.player_height)


def render_video(slot: "st.delta_generator.DeltaGenerator", clip: ClipResult, settings: UiSettings) -> None:
    """The clip's rendered video under its card, when its "Watch as video" toggle is on."""
    if not st.session_state.get(f"video_{clip.id}"):
        return
    box = slot.container()
    photo = st.session_state.get("dancer_photo")
    if photo is not None:        # the person of the sidebar's photo performs the clip (a video job)
        with box:
            show_video(box, lambda: cached_dancer_video(settings.api_url, clip.id, photo.getvalue(), photo.name,
                                                        settings.public_api_url),
                       caption=DANCER_CAPTION.format(seconds=DANCER_SECONDS))
        return
    with box, st.spinner("Rendering the video (the first time takes a few seconds)…"):
        show_video(box, lambda: cached_video(settings.api_url, clip.id, settings.public_api_url))


def show_api_error(exc: ApiError, settings: UiSettings) -> None:
    if isinstance(exc, ApiUnreachable):
        st.error(f"**The search API is unreachable** at `{exc.base_url}` ({exc.reason}).\n\n"
                 f"Start it with `dancesearch serve --port PORT` (or `make demo`), or point the UI at it with "
                 f"`dancesearch ui --api-url URL`.", icon="🔌")
    elif isinstance(exc, ApiRequestError):
        st.error(f"**The search API rejected the request**: {exc.message}"
                 + (f" (field `{exc.field}`)" if exc.field else ""), icon="⚠️")
    else:
        st.error(f"**The search API failed**: {exc}", icon="⚠️")
    if st.button("Retry", key="retry"):
        st.cache_data.clear()
        st.rerun()


def panel_callbacks(settings: UiSettings) -> PanelCallbacks:
    """The page pieces the gap panel reuses: the same client, player and download buttons as search results."""
    return PanelCallbacks(
        client=lambda: get_client(settings.api_url),
        player=lambda clip, title: render_player(st.empty(), clip, settings, title=title),
        downloads=lambda clip, prefix: download_buttons(clip, settings.api_url, prefix),
        md_escape=md_escape,
        audio_url=lambda path: f"{settings.public_api_url}{path}" if settings.public_api_url and path else None,
    )


def status_line(resp: SearchResponse, shown: int, text: str | None, refinement: Refinement) -> None:
    parts = [f"**{shown}** result{'s' if shown != 1 else ''}"]
    if text:
        parts.append(f"for “{md_escape(text)}”")
    elif resp.mode == "genre":
        parts.append("by genre")
    if resp.took_ms is not None:
        parts.append(f"in {resp.took_ms:.0f} ms")
    if resp.model:
        parts.append(f"· model `{resp.model.replace('`', '')}`")
    st.markdown(" ".join(parts))
    if resp.expanded_query and text:
        st.caption(f"Searched as “{md_escape(resp.expanded_query)}”: DanceSearch recognised the dance words "
                   "in your query and added the style they belong to.")
    if not refinement.is_empty:
        st.markdown("Refined by: " + " ".join(f":blue-badge[{md_escape(c)}]" for c in refinement.chips()))


# --- main ------------------------------------------------------------------------------------------
def main() -> None:
    st.set_page_config(page_title="DanceSearch", page_icon="💃", layout="wide")
    settings = load_settings()
    _init_state()
    st.title("DanceSearch")
    st.caption("Search 3D dance clips by describing them; watch each result with its music.")

    try:
        genres, bpm, k, ncols = sidebar(settings)
    except ApiError as exc:
        search_box()
        show_api_error(exc, settings)
        return
    search_box()

    query = st.session_state.query
    more_like = st.session_state.more_like
    if not query and not genres and more_like is None:
        st.info("Type a description of a dance and press **Search**, pick an example above, or choose genres in "
                "the sidebar to browse.", icon="🔎")
        return

    refinement = _refinement_from_state()
    base = SearchRequest(q=query, k=k, genres=tuple(genres), bpm_min=bpm[0], bpm_max=bpm[1])
    request = apply_refinement(base, refinement)
    try:
        if more_like is not None:
            st.button("← Back to search results", key="back", on_click=_back_to_search)
            st.markdown(f"Clips similar to **{md_escape(more_like[1])}**")
            filtering = bool(request.genres) or request.bpm_min is not None or request.bpm_max is not None
            resp = cached_similar(settings.api_url, more_like[0], min(3 * k, 100) if filtering else k)
            results = filter_results(resp.results, request.genres, request.bpm_min, request.bpm_max)[:k]
            text = None
        else:
            with st.spinner("Searching…"):
                resp = cached_search(settings.api_url, request)
            results = list(resp.results)
            text = request.q
    except ApiError as exc:
        show_api_error(exc, settings)
        return

    all_genres = [g for g, _ in cached_genres(settings.api_url)]
    if more_like is None and resp.outcome == "not_dance":
        # The gate is wrong on a few genuine dance texts ("a ballerina doing pirouettes"), so the closest clips
        # stay reachable below the message instead of being hidden; only generation is not offered.
        not_dance_message(resp.outcome_reason, md_escape)
        if not results:
            return
        st.markdown("##### If you did mean a dance, these are the closest clips")
    else:
        status_line(resp, len(results), text, refinement)
    if more_like is None and resp.outcome == "gap" and resp.proposal is not None and text:
        gap_panel(query, text, resp.outcome_reason, resp.proposal, all_genres, panel_callbacks(settings))
        if results:
            st.markdown("##### The closest clips in the catalog")
    elif resp.no_match and results and resp.outcome != "not_dance":
        thr = f" (best score below the confidence threshold {resp.threshold:.2f})" if resp.threshold is not None else ""
        st.warning(f"**Low confidence**: no clip matches this description well{thr}. These are the closest clips; "
                   "try rewording or refining below.", icon="🤔")
    if not results:
        st.warning("**No results.** Nothing in the catalog passes these filters: widen the tempo range, remove "
                   "genres, or clear the refinements.", icon="🈳")
        refinement_bar([], all_genres)
        return

    refinement_bar([r.genre for r in results if r.genre], all_genres)
    slots = []
    for row_start in range(0, len(results), ncols):
        cols = st.columns(ncols)
        for col, clip in zip(cols, results[row_start:row_start + ncols]):
            with col:
                slots.append((*result_card(clip, settings.api_url, ncols), clip))
    for slot, video_slot, clip in slots:   # text first, then the players: the list is readable while media loads
        render_player(slot, clip, settings)
        render_video(video_slot, clip, settings)


main()
