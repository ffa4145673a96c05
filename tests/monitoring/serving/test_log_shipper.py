"""The shipper's pieces on their own: frames survive any cut of the pipe, requests become the rows
``encode_rows`` makes, the buffer's bound, and the last drain against a store that stays down."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest

from monitoring.serving.log_shipper import (
    HEADER,
    FrameReader,
    Shipper,
    decode_requests,
    frame,
    main,
)
from monitoring.store.engine import is_sqlite
from monitoring.store.prediction_rows import COLUMNS, encode_rows


def _request(n: int, version: int = 1, role: str = "champion", paired_ids: list[str] | None = None) -> list:
    return ["m", version, datetime(2026, 11, 27, 12, 0, 1, 250_000, tzinfo=UTC), [f"id-{version}-{i}" for i in range(n)],
            [f'{{"age":{i},"region":"north"}}' for i in range(n)], [1] * n, [0.25] * n, 3.5, "ok", None, "api", "client-a", 7,
            role, paired_ids]


def test_frames_are_reassembled_from_pipe_reads_of_any_size():
    frames = [frame([_request(i + 1, version=i)]) for i in range(20)]
    stream = b"".join(frames)
    cuts = sorted(random.Random(7).sample(range(1, len(stream)), 40))
    reader = FrameReader()
    payloads = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=False):
        payloads += reader.feed(stream[start:end])
    assert payloads == [f[HEADER.size:] for f in frames]


@pytest.mark.parametrize("url", ["sqlite:///x.db", "postgresql+psycopg2://postgres@127.0.0.1/x"])
def test_a_framed_request_becomes_the_rows_encode_rows_makes(url):
    request = _request(3)
    request[5] = np.array([1, 0, 1])  # labels straight from a model
    [payload] = FrameReader().feed(frame([request]))
    rows = decode_requests(payload, is_sqlite(url))
    expected = encode_rows(is_sqlite(url), model_name="m", model_version=1, created_at=request[2], ids=request[3],
                           features_json=request[4], predictions=[1, 0, 1], scores=[0.25] * 3, latency_ms=3.5,
                           client="client-a", key_id=7)
    assert rows == expected


def test_a_shadow_request_keeps_its_role_and_the_champion_ids_it_shadowed():
    pairs = ["champion-0", "champion-1"]
    [payload] = FrameReader().feed(frame([_request(2, version=2, role="shadow", paired_ids=pairs)]))
    rows = decode_requests(payload, True)
    role, paired = COLUMNS.index("role"), COLUMNS.index("paired_id")
    assert [(row[role], row[paired]) for row in rows] == [("shadow", "champion-0"), ("shadow", "champion-1")]


def test_the_buffer_keeps_its_bound_and_counts_what_it_refuses():
    reports = []
    shipper = Shipper("sqlite:///unused.db", capacity=5, flush_rows=10, flush_seconds=1, drain_seconds=0,
                      report=lambda counts, final: reports.append((counts.dropped, final)))
    rows = decode_requests(FrameReader().feed(frame([_request(4), _request(3, version=2)]))[0], True)
    shipper.take(rows[:4])
    shipper.take(rows[4:])
    assert len(shipper.buffer) == 5 and shipper.counts.dropped == 2
    assert reports == [(2, False)]


def test_the_last_drain_against_a_dead_store_counts_every_row_as_dropped():
    reports = []
    shipper = Shipper("postgresql+psycopg2://postgres@127.0.0.1:1/nowhere", capacity=100, flush_rows=10,
                      flush_seconds=0.05, drain_seconds=0.3, report=lambda counts, final: reports.append(final))
    shipper.take(decode_requests(FrameReader().feed(frame([_request(25)]))[0], False))
    shipper.drain()
    assert (shipper.counts.written, shipper.counts.dropped, len(shipper.buffer)) == (0, 25, 0)
    assert shipper.counts.store_ok is False and "OperationalError" in shipper.counts.last_error
    assert reports[-1] is True


def test_the_store_url_must_come_in_the_environment(monkeypatch, capsys):
    monkeypatch.delenv("VIGIL_LOG_STORE_URL", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["--capacity", "10", "--flush-rows", "5", "--flush-seconds", "0.1", "--drain-seconds", "1"])
    assert exit_.value.code == 2
    assert "VIGIL_LOG_STORE_URL" in capsys.readouterr().err
