"""Schemathesis fuzzing of the running server's OpenAPI schema: no 5xx, responses match the schema.

Each operation of /openapi.json is exercised with schema-valid (positive) and schema-violating
(negative) generated requests against a real uvicorn server. Bounded: 6 examples per
operation and mode by default ($DANCESEARCH_FUZZ_EXAMPLES for more). The generation routes run with a tiny
real diffusion run and a queue of 2 (so 429 answers are exercised too). (Driven through hypothesis directly: schemathesis' pytest plugin does not
support pytest 9 yet.)
"""
from __future__ import annotations

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis import checks as st_checks  # noqa: E402

from indexer.index.builder import build_index  # noqa: E402
from indexer.index.service import SearchEngine  # noqa: E402
from search_api.app import create_app  # noqa: E402
from search_api.settings import ApiSettings  # noqa: E402
from search_api.jobs import DiffusionBackend  # noqa: E402
from search_support import ServerThread, WordEmbedder, make_workspace  # noqa: E402
from test_generate_api import add_long_clip, tiny_run  # noqa: E402

CHECKS = [st_checks.not_a_server_error, st_checks.status_code_conformance, st_checks.content_type_conformance,
          st_checks.response_schema_conformance]
EXAMPLES = int(os.environ.get("DANCESEARCH_FUZZ_EXAMPLES", "6"))  # per operation and mode; raise it for a long run
EXPECTED_OPERATIONS = {"GET /v1/search", "POST /v1/search", "GET /v1/clips/{clip_id}", "GET /v1/clips/{clip_id}/similar",
                       "GET /v1/clips/{clip_id}/motion", "GET /v1/clips/{clip_id}/audio", "GET /v1/genres",
                       "GET /healthz", "GET /readyz", "POST /v1/admin/reload", "POST /v1/generate",
                       "GET /v1/jobs/{job_id}", "DELETE /v1/jobs/{job_id}", "GET /v1/clips/{clip_id}/provenance",
                       "GET /v1/clips/{clip_id}/video", "POST /v1/videos", "GET /v1/videos/{job_id}",
                       "GET /v1/videos/{job_id}/file", "DELETE /v1/videos/{job_id}"}
VIDEO_OPERATION = "GET /v1/clips/{clip_id}/video"   # answers 503 by design where the video extra / EGL is missing


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz")
    ws = make_workspace(home, clips_per_genre=3)
    add_long_clip(ws, seconds=6.0)
    emb = WordEmbedder()
    build_index(ws, emb)
    app = create_app(ApiSettings(home=home, generate_queue_limit=2, max_upload_bytes=256 * 1024),
                     engine=SearchEngine.open(ws, emb), generator=DiffusionBackend(tiny_run(home.parent)),
                     genre_fn=lambda text: ("waltz", 0.5))
    with ServerThread(app) as srv:
        yield srv


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_and_schema_conformance(server, mode):
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert {op.label for op in operations} == EXPECTED_OPERATIONS
    calls = {"n": 0}
    from search_api.video import video_available

    skipped = 0
    for op in operations:
        if op.label == VIDEO_OPERATION and not video_available()[0]:
            skipped += 1
            continue

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def run(case):
            calls["n"] += 1
            case.call_and_validate(base_url=server.url, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE, op.label  # an operation without parameters has no invalid input
        except Exception as exc:  # hypothesis raises the failing example's error; name the operation
            raise AssertionError(f"{op.label} ({mode.value}): {exc}") from exc
    assert calls["n"] >= len(operations) - skipped
