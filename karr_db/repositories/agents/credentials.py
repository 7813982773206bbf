"""Agent tokens: rotation, verification and the upgrade of legacy plaintext ones."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy import func, select, update
from sqlalchemy.exc import InternalError, OperationalError

from karr_db import tokens
from karr_db.dialects import read_only
from karr_db.errors import (
    InvalidTokenError,
    NotFoundError,
)
from karr_db.models import Agent
from karr_db.repositories.agents.dto import (
    AgentCredentials,
    AgentDTO,
)
from karr_db.repositories.agents.reading import AgentReads
from karr_db.repositories.events import EventType


class AgentTokens(AgentReads):
    """Token work: only digests are stored (KITT's ``token_hash``), and an older
    form is moved there on first use."""

    def rotate_token(self, agent_id: str) -> AgentCredentials:
        """Replace the agent's token; the old one stops verifying at commit."""
        self._events.lock_log()
        token = tokens.generate_token()
        updated = self.session.execute(
            update(Agent)
            .where(Agent.id == agent_id)
            .values(**stored_token(token))
            .returning(Agent.id)
        ).one_or_none()
        if updated is None:
            raise NotFoundError("agent", agent_id)
        self._events.append(EventType.AGENT_TOKEN_ROTATED, source_id=agent_id, data={})
        return AgentCredentials(agent=self.get(agent_id), token=SecretStr(token))

    def verify_token(self, agent_id: str, token: str) -> bool:
        """Whether ``token`` is the agent's; moves an older stored form to ``token_hash``."""
        row = self.session.execute(
            select(Agent.token_hash, Agent.token_prefix, Agent.token).where(Agent.id == agent_id)
        ).one_or_none()
        if row is None:
            return False
        token_hash, prefix, legacy = row
        if not tokens.matches(token_hash, prefix, legacy, token):
            return False
        if token_hash != tokens.hash_token(token):
            self._upgrade_stored_token(agent_id, (token_hash, prefix, legacy), token)
        return True

    def authenticate(self, agent_id: str, token: str) -> AgentDTO:
        """The agent, if ``token`` is its own; else :class:`InvalidTokenError`.

        An unknown agent fails the same way, so a caller cannot probe for ids.
        """
        if not self.verify_token(agent_id, token):
            raise InvalidTokenError(agent_id)
        return self.get(agent_id)

    def _upgrade_stored_token(
        self, agent_id: str, row: tuple[str | None, str | None, str | None], token: str
    ) -> None:
        # Conditional on the values just compared, so a rotation that committed
        # in between is never overwritten. Best effort: if SQLite cannot
        # upgrade this transaction's read lock, the next use tries again.
        token_hash, prefix, legacy = row
        if read_only(self.session.connection()):
            return  # a read-only unit of work only verifies: a writing one moves it
        try:
            self._events.lock_log()  # the one lock order, even for this quiet write
            with self.session.begin_nested():
                self.session.execute(
                    update(Agent)
                    .where(
                        Agent.id == agent_id,
                        Agent.token_hash.is_not_distinct_from(token_hash),
                        Agent.token_prefix.is_not_distinct_from(prefix),
                        Agent.token.is_not_distinct_from(legacy),
                    )
                    .values(**stored_token(token))
                )
        except (OperationalError, InternalError):  # a lock SQLite could not upgrade
            pass

    def hash_legacy_tokens(self) -> int:
        """Move every plaintext token KITT wrote before its schema 4 to ``token_hash``.

        What KITT's schema-4 migration does, for a database that got plaintext
        tokens afterwards (revision 0021 moved those already stored); returns
        how many were moved. Verification moves them on first use either way.
        """
        self._events.lock_log()
        legacy = self.session.execute(
            select(Agent.id, Agent.token).where(
                func.coalesce(Agent.token_hash, "") == "",
                Agent.token.is_not(None),
                Agent.token != "",
                ~Agent.token.startswith(tokens.HASH_PREFIX, autoescape=True),
            )
        ).all()
        for agent_id, stored in legacy:
            assert stored is not None
            self.session.execute(
                update(Agent)
                .where(Agent.id == agent_id, Agent.token == stored)
                .values(**stored_token(stored))
            )
        return len(legacy)


def stored_token(token: str) -> dict[str, str]:
    """The agent columns that keep ``token``: KITT's form (digest, prefix, empty ``token``)."""
    return {
        "token_hash": tokens.hash_token(token),
        "token_prefix": tokens.token_prefix(token),
        "token": "",
    }
