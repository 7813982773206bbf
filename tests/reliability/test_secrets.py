"""No agent token, token hash or database password in any log record or CLI output."""

from __future__ import annotations

import logging
import secrets
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from karr_db.db import transaction
from karr_db.engine import make_engine
from karr_db.errors import InvalidTokenError, KarrError
from karr_db.importing import import_paths
from karr_db.models import Agent
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.results import ResultsRepository
from karr_db.tokens import hash_token
from tests.reliability.reliability_helpers import load_samples, variant
from tests.support.cli import cli

pytestmark = pytest.mark.reliability


class _Capture(logging.Handler):
    """Every record, formatted with its traceback, as the most talkative handler would."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(repr(record.args))


@pytest.fixture
def everything_logged() -> Iterator[_Capture]:
    handler = _Capture()
    root = logging.getLogger()
    names = ["", "sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "psycopg", "alembic"]
    levels = {name: logging.getLogger(name).level for name in names}
    root.addHandler(handler)
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_no_secret_in_logs_or_cli_output(
    migrated_url: str,
    backend: str,
    samples_dir: Path,
    tmp_path: Path,
    everything_logged: _Capture,
    capsys: pytest.CaptureFixture[str],
    figures: Any,
) -> None:
    password = f"pw-{secrets.token_hex(8)}"
    url = migrated_url
    if backend == "postgresql":  # trust authentication accepts (and ignores) any password
        url = make_url(migrated_url).set(password=password).render_as_string(hide_password=False)
    bad_urls = [
        f"postgresql://postgres:{password}@127.0.0.1:1/karr",  # nobody listens
        f"postgresql://postgres:{password}@127.0.0.1:5432/karr_missing_{secrets.token_hex(4)}",
        f"postgresql://postgres:{password}@no-such-host.invalid:5432/karr",
    ]
    texts: list[str] = []
    samples = load_samples(samples_dir)

    engine = make_engine(url, echo="debug")
    try:
        with transaction(engine) as session:
            agents = AgentsRepository(session)
            first = agents.register("secret-keeper", hostname="gpu-1", tags=["gpu"])
            agent_id = first.agent.id
            texts += [repr(first), str(first), first.model_dump_json()]
        with transaction(engine) as session:
            second = AgentsRepository(session).rotate_token(agent_id)
            texts += [repr(second), str(second)]
        tokens = [first.token.get_secret_value(), second.token.get_secret_value()]
        with transaction(engine) as session:
            agents = AgentsRepository(session)
            texts.append(repr(agents.authenticate(agent_id, tokens[1])))
            for wrong in (tokens[0], tokens[1] + "x"):
                with pytest.raises(InvalidTokenError) as caught:
                    agents.authenticate(agent_id, wrong)
                texts += [str(caught.value), repr(caught.value)]
            try:
                agents.register("secret-keeper")  # a duplicate: the layer's error, no values
            except KarrError as exc:
                texts += [str(exc), "".join(traceback.format_exception(exc))]
            ResultsRepository(session).save(variant(samples, "secrets"))
            stored = session.scalar(sa.select(Agent.token_hash).where(Agent.id == agent_id))
        hashes = [hash_token(t) for t in tokens]
        assert stored == hashes[1]
        try:  # a driver error whose statement carries the hash, translated at the boundary
            with transaction(engine) as session:
                session.execute(
                    sa.text(
                        "INSERT INTO agents (id, name, hostname, token) VALUES (:i, :n, :h, :t)"
                    ),
                    {"i": agent_id, "n": "dup", "h": "x", "t": hashes[1]},
                )
        except KarrError as exc:
            texts += [str(exc), "".join(traceback.format_exception(exc))]
        import_paths(engine, [samples_dir])
    finally:
        engine.dispose()

    outputs = [
        cli("import", "--database", url, str(samples_dir)),
        cli("list", "--database", url),
        cli("list", "--database", url, "--json"),
        cli("agents", "--database", url),
        cli("agents", "--database", url, "--json"),
        cli("events", "--database", url, "--json", "-n", "100"),
        cli("status", "--database", url),
        cli("status", "--database", url, "--json"),
    ]
    for bad in bad_urls:
        outputs.append(cli("status", "--database", bad))
        outputs.append(cli("--debug", "list", "--database", bad))
        outputs.append(cli("status", "--json", env={"KARR_DATABASE_URL": bad}))
    assert any(o.exit_code != 0 for o in outputs[-3:])
    texts += [o.output for o in outputs]
    captured = capsys.readouterr()
    texts += [captured.out, captured.err, *everything_logged.lines]

    corpus = "\n".join(texts)
    assert "secret-keeper" in corpus  # the scenario did reach the logs and the output
    assert agent_id in corpus
    forbidden = {
        "token": tokens,
        "token hash": hashes,
        "password": [password],  # in the bad URLs on both dialects, in every URL on PostgreSQL
    }
    for what, values in forbidden.items():
        for value in values:
            assert value not in corpus, f"a {what} leaked"
    figures["dialect"] = backend
    figures["log_records"] = len(everything_logged.lines) // 2
    figures["cli_invocations"] = len(outputs)
    figures["characters_searched"] = len(corpus)
    figures["secrets_checked"] = sum(len(v) for v in forbidden.values())
