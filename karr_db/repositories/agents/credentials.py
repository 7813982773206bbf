"""Agent tokens: rotation, verification and the upgrade of legacy plaintext ones."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.exc import InternalError, OperationalError

from karr_db import tokens
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
    """Token work: only hashes are stored, and a plaintext legacy token is hashed on use."""

    def rotate_token(self, agent_id: str) -> AgentCredentials:
        """Replace the agent's token; the old one stops verifying at commit."""
        self._events.lock_log()
        token = tokens.generate_token()
        updated = self.session.execute(
            update(Agent)
            .where(Agent.id == agent_id)
            .values(token=tokens.hash_token(token), token_prefix=tokens.prefix(token))
            .returning(Agent.id)
        ).one_or_none()
        if updated is None:
            raise NotFoundError("agent", agent_id)
        self._events.append(EventType.AGENT_TOKEN_ROTATED, source_id=agent_id, data={})
        return AgentCredentials(agent=self.get(agent_id), token=SecretStr(token))

    def verify_token(self, agent_id: str, token: str) -> bool:
        """Whether ``token`` is the agent's; upgrades a legacy plaintext token on success."""
        stored = self.session.scalar(select(Agent.token).where(Agent.id == agent_id))
        if not tokens.matches(stored, token):
            return False
        assert stored is not None
        if not tokens.is_hashed(stored):
            self._upgrade_legacy_token(agent_id, stored)
        return True

    def authenticate(self, agent_id: str, token: str) -> AgentDTO:
        """The agent, if ``token`` is its own; else :class:`InvalidTokenError`.

        An unknown agent fails the same way, so a caller cannot probe for ids.
        """
        if not self.verify_token(agent_id, token):
            raise InvalidTokenError(agent_id)
        return self.get(agent_id)

    def _upgrade_legacy_token(self, agent_id: str, stored: str) -> None:
        # Conditional on the value just compared, so a rotation that committed
        # in between is never overwritten. Best effort: if SQLite cannot
        # upgrade this transaction's read lock (or the unit of work is read
        # only), the next use tries again.
        try:
            self._events.lock_log()  # the one lock order, even for this quiet write
            with self.session.begin_nested():
                self.session.execute(
                    update(Agent)
                    .where(Agent.id == agent_id, Agent.token == stored)
                    .values(token=tokens.hash_token(stored))
                )
        except (OperationalError, InternalError):  # InternalError: PostgreSQL READ ONLY
            pass

    def hash_legacy_tokens(self) -> int:
        """Replace every plaintext token left by the earlier system with its hash.

        For use right after adopting an older database; returns how many
        tokens were replaced. Verification keeps working either way.
        """
        self._events.lock_log()
        legacy = self.session.execute(
            select(Agent.id, Agent.token).where(
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
                .values(token=tokens.hash_token(stored))
            )
        return len(legacy)
