"""The gap panel: when a search finds that the catalog cannot serve a description, offer to generate the dance.

Flow on the page (issue 15, section 4): a plain statement of the gap with the API's ``outcome_reason`` ->
the proposed genre (editable: a select over the API's genres) and a choice of music (the suggested catalog
clips, each labelled and playable, or an upload) and the length -> **Generate** (``POST /v1/generate``) ->
a progress bar that polls ``GET /v1/jobs/{id}`` (a Streamlit fragment re-run every second, so only the
panel refreshes) with a **Cancel** button (``DELETE``) -> the generated dance in the same skeleton player
as search results, with its music, a "generated" badge and npz / BVH downloads. A ``not_dance`` outcome
gets a friendly message and no Generate button (:func:`not_dance_message`).

State: ``st.session_state["gen"]`` holds the job of the current query (``{"query", "job_id", "job"}``); a
new search leaves it behind (the panel shows a job only for the query it was made for). API failures are
shown as plain messages (:func:`api_error_text`), never a traceback.

The page's own pieces (the API client, the cached player, the download buttons) are passed in as
callables so this module does not import ``ui/app.py`` (a script that runs its page when imported).
Dataset text (clip keys, genre names from the API) goes through ``md_escape`` or ``st.text``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Sequence

import streamlit as st

from ui.api_client import (ApiClient, ApiError, ApiRequestError, ApiUnreachable, ClipResult, GenerateRequest, Job,
                           MusicSuggestion, Proposal)

UPLOAD = "upload"                            # the music radio's "my own file" option
UPLOAD_TYPES = ("wav", "ogg", "mp3", "flac")  # what the API decodes (search_api.uploads)
MIN_SECONDS, MAX_SECONDS = 4.0, 300.0        # the API's bounds of ``seconds``
POLL_S = 1.0                                 # how often the progress fragment polls the job

NOT_DANCE_TITLE = "That doesn't look like a dance description"


@dataclass(frozen=True)
class PanelCallbacks:
    """What the gap panel needs from the page."""

    client: Callable[[], ApiClient]
    player: Callable[[ClipResult, str], None]          # render the skeleton player of a clip (title)
    downloads: Callable[[ClipResult, str], None]       # download buttons of a clip (key prefix)
    md_escape: Callable[[object], str]
    audio_url: Callable[[str], str | None]             # a browser-reachable URL of an API audio path, if any


# --- pure helpers (unit-tested) ---------------------------------------------------------------------
def query_key(text: str) -> str:
    """A short stable id of a query, so widget keys differ between queries (new query -> fresh widgets)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


def genre_options(all_genres: Sequence[str], proposal: Proposal) -> list[str]:
    """The genre select's options: the proposal's genre first, then the API's genres (no duplicates)."""
    return list(dict.fromkeys([proposal.genre, *all_genres]))


def music_label(m: MusicSuggestion, escape: Callable[[object], str] = str) -> str:
    """``#12 waltz · 92 BPM · demo/waltz_0003#1`` (the radio's label of one suggested clip)."""
    parts = [f"#{m.clip_id}"]
    if m.genre:
        parts.append(escape(m.genre))
    if m.bpm is not None:
        parts.append(f"{m.bpm:.0f} BPM")
    if m.key:
        parts.append(escape(m.key))
    return " · ".join(parts)


def progress_text(job: Job) -> str:
    """The progress bar's caption: what the job is doing, in words."""
    if job.cancel_requested and not job.finished:
        return "Cancelling… (the generator stops at its next step)"
    if job.state == "queued":
        return "Waiting for the generator (queued)…"
    stage = (job.stage or "").strip()
    return f"Generating… {job.progress:.0%}" + (f" · {stage}" if stage else "")


def api_error_text(exc: ApiError) -> str:
    """A plain sentence for an API failure of the generation routes."""
    if isinstance(exc, ApiUnreachable):
        return f"The search API is unreachable at {exc.base_url} ({exc.reason})."
    if isinstance(exc, ApiRequestError):
        if exc.status == 401:
            return ("The API needs a key to generate dances: start the UI with DANCESEARCH_API_KEY set to the "
                    "server's key.")
        if exc.status == 429:
            wait = f" Try again in about {exc.retry_after:.0f} s." if exc.retry_after else ""
            return f"The generator is busy: {exc.message}.{wait}".replace("..", ".")
        where = f" (field '{exc.field}')" if exc.field else ""
        return f"The API refused to generate: {exc.message}{where}."
    return f"The API failed: {exc}"


def job_error_text(job: Job) -> str:
    if job.state == "cancelled":
        return "Generation was cancelled."
    msg = job.error_message or "no reason given"
    if job.error_code == "interrupted":
        return f"Generation was interrupted (the server stopped while it ran): {msg}. Generate again to retry."
    return f"Generation failed: {msg}"


# --- session state ----------------------------------------------------------------------------------
def current_job(query: str) -> dict | None:
    gen = st.session_state.get("gen")
    return gen if gen and gen.get("query") == query else None


def _forget_job() -> None:
    st.session_state.pop("gen", None)


def _cancel(client: Callable[[], ApiClient], job_id: str) -> None:
    try:
        client().cancel_job(job_id)
    except ApiError as exc:
        st.session_state["gen_cancel_error"] = api_error_text(exc)


# --- page pieces ------------------------------------------------------------------------------------
def not_dance_message(reason: str | None, escape: Callable[[object], str]) -> None:
    """The friendly answer to a text that is not about dance: what the search is for, no Generate button."""
    why = f" ({escape(reason)})" if reason else ""
    st.info(f"**{NOT_DANCE_TITLE}**{why}.\n\nDanceSearch finds and makes dances: describe how a dance moves, "
            "its style, tempo or mood, for example *a slow gentle waltz that travels in circles* or "
            "*energetic hip-hop with fast footwork*.", icon="💬")


def gap_panel(query: str, text: str, reason: str | None, proposal: Proposal, all_genres: Sequence[str],
              cb: PanelCallbacks) -> None:
    """The whole panel for a gap search (``query``: the search box text, the panel's key; ``text``: what is
    sent as the generation request's ``text``)."""
    esc = cb.md_escape
    with st.container(border=True, key=f"gap_panel_{query_key(query)}"):
        st.markdown("#### Nothing in the catalog fits this description")
        st.markdown((f"{esc(reason[0].upper() + reason[1:])}. " if reason else "")
                    + "The clips below are the closest ones; DanceSearch can **generate a new dance** for it instead.")
        gen = current_job(query)
        job: Job | None = gen.get("job") if gen else None
        if gen and (job is None or not job.finished):
            try:
                job = cb.client().job(gen["job_id"])
                gen["job"] = job
            except ApiError as exc:
                st.warning(f"Could not read the generation job: {api_error_text(exc)}", icon="⚠️")
                st.button("Start over", key="gen_reset", on_click=_forget_job)
                return
        if job is not None and not job.finished:
            _progress(cb, gen["job_id"])
            return
        if job is not None and job.state == "done" and job.result is not None:
            _result(job, cb)
            return
        if job is not None:   # failed or cancelled: say so, and offer the form again
            (st.info if job.state == "cancelled" else st.error)(job_error_text(job))
        _form(query, text, proposal, all_genres, cb)


def _form(query: str, text: str, proposal: Proposal, all_genres: Sequence[str], cb: PanelCallbacks) -> None:
    qk = query_key(query)
    esc = cb.md_escape
    options = genre_options(all_genres, proposal)
    conf = f" ({proposal.confidence:.0%} sure)" if proposal.confidence is not None else ""
    c1, c2 = st.columns([2, 1])
    genre = c1.selectbox("Genre to dance", options, index=0, key=f"gen_genre_{qk}",
                         help=f"Proposed from your description: {proposal.genre}{conf}. Pick another to change it.")
    seconds = c2.number_input("Length (seconds)", min_value=MIN_SECONDS, max_value=MAX_SECONDS, value=None, step=1.0,
                              key=f"gen_seconds_{qk}", placeholder="the whole music",
                              help="Leave empty to dance to the whole piece of music.")
    by_id = {m.clip_id: m for m in proposal.music}
    choices: list[int | str] = [*by_id, UPLOAD]
    choice = st.radio("Music", choices, key=f"gen_music_{qk}",
                      format_func=lambda c: "Upload my own music (wav, ogg, mp3, flac)" if c == UPLOAD
                      else "Suggested: " + music_label(by_id[c], esc),
                      help="Catalog clips whose music fits your description, best first; or your own file.")
    upload = None
    if choice == UPLOAD:
        upload = st.file_uploader("Your music", type=list(UPLOAD_TYPES), key=f"gen_upload_{qk}",
                                  help="At least 4 seconds; the server takes up to 20 MiB.")
    else:
        m = by_id[choice]
        if m.audio:
            _preview(m, cb)
    if st.button("Generate", type="primary", key=f"gen_go_{qk}", disabled=choice == UPLOAD and upload is None):
        req = GenerateRequest(text=text or None, genre=genre, seconds=seconds,
                              clip_id=None if choice == UPLOAD else int(choice))
        try:
            if choice == UPLOAD:
                job = cb.client().generate_upload(req, upload.getvalue(), upload.name, upload.type)
            else:
                job = cb.client().generate(req)
        except ApiError as exc:
            st.error(api_error_text(exc), icon="⚠️")
            return
        st.session_state["gen"] = {"query": query, "job_id": job.id, "job": job}
        st.rerun()


def _preview(m: MusicSuggestion, cb: PanelCallbacks) -> None:
    """The selected suggestion's music, playable in the page."""
    url = cb.audio_url(m.audio or "")
    try:
        if url:
            st.audio(url)
        else:
            media = _audio_bytes(cb.client(), m.audio or "")
            st.audio(media[0], format=media[1])
    except ApiError as exc:
        st.caption(f"(the music of clip #{m.clip_id} cannot be played here: {exc})")


@st.cache_data(max_entries=50, show_spinner=False, hash_funcs={ApiClient: lambda c: c.base_url})
def _audio_bytes(client: ApiClient, path: str) -> tuple[bytes, str]:
    media = client.media(path)
    return media.content, media.content_type


def _progress(cb: PanelCallbacks, job_id: str) -> None:
    st.session_state["gen_poll"] = {"job_id": job_id, "cb": cb}
    _progress_fragment()


@st.fragment(run_every=POLL_S)
def _progress_fragment() -> None:
    """Polls the job once per run; the whole page reruns when it finished (to show the result)."""
    poll = st.session_state.get("gen_poll")
    gen = st.session_state.get("gen")
    if not poll or not gen or gen.get("job_id") != poll["job_id"]:
        return
    cb: PanelCallbacks = poll["cb"]
    try:
        job = cb.client().job(poll["job_id"])
    except ApiError as exc:
        st.warning(f"Could not read the job's progress ({api_error_text(exc)}); retrying…", icon="⏳")
        return
    gen["job"] = job
    if job.finished:
        st.session_state.pop("gen_poll", None)
        st.rerun(scope="app")
    st.progress(job.progress, text=progress_text(job))
    err = st.session_state.pop("gen_cancel_error", None)
    if err:
        st.error(err, icon="⚠️")
    st.button("Cancel", key="gen_cancel", on_click=_cancel, args=(cb.client, job.id), disabled=job.cancel_requested)


def _result(job: Job, cb: PanelCallbacks) -> None:
    res = job.result
    assert res is not None
    esc = cb.md_escape
    st.success(f"Generated {len(res.clips)} dance{'s' if len(res.clips) != 1 else ''}"
               + (f" ({esc(res.genre)}" if res.genre else " (")
               + (f", {res.seconds:.0f} s)" if res.seconds else ")") + ".", icon="✨")
    for gc in res.clips:
        clip = gc.as_clip()
        with st.container(border=True, key=f"gen_clip_{gc.id}"):
            head = [":violet-badge[generated]", f"**#{gc.id}**", f"**{esc(gc.genre or res.genre or 'unknown genre')}**"]
            if gc.duration_s is not None:
                head.append(f"{gc.duration_s:.1f} s")
            if gc.seed is not None:
                head.append(f"seed {gc.seed}")
            if res.model_id:
                head.append(f"model `{res.model_id.replace('`', '')}`")
            st.markdown(" · ".join(head))
            cb.player(clip, f"generated #{gc.id} {gc.genre or ''}")
            with st.container(horizontal=True, gap="small"):
                cb.downloads(clip, "gen")
    st.button("Generate another", key="gen_again", on_click=_forget_job,
              help="Back to the choices (another genre, music or length).")
