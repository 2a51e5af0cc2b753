"""The database schema: one module per subject, every table re-exported here, so code imports
``from server.schema import Message`` and Alembic reads one ``Base.metadata``.

- ``base``: the declarative ``Base``, its type map, and ``utcnow``, the one clock;
- ``instances``: the connected numbers (``Instance``);
- ``contacts``: customers, the identities they write under, their tags and custom fields;
- ``messaging``: conversations, messages, their journey, and delivery (outbox, early statuses);
- ``leases``: which worker holds which piece of work;
- ``auth``: web sessions and login attempts;
- ``llm``: model calls and budgets, API tokens, local model versions and promotions,
  each knowledge base's answer mode;
- ``people``: users (agents, managers, admins) and teams;
- ``flows``: flows as data and the sessions that run them;
- ``inbox``: agents' notes, canned responses, and how far each agent has read a conversation;
- ``schedules``: messages left to go out later, once or on a repeat, and what each sent;
- ``simulator``: what the built-in WhatsApp simulator's phones show.

A new table goes in its subject's module (a new subject, a new module) and is re-exported
here; a table not imported here is unknown to Alembic's ``check`` and ``autogenerate``.

Duplicates are decided by unique keys inside transactions, never by memory: a message is unique
on (instance, provider message id), a reply on the message it answers, an identity on its value.
Nothing is deleted to recover from an error; every message keeps a journey of what happened.
"""

from server.schema.auth import LoginAttempt, WebSession
from server.schema.base import Base, utcnow
from server.schema.contacts import (
    Contact,
    ContactField,
    ContactIdentity,
    ContactMerge,
    ContactTag,
    CustomField,
    Tag,
)
from server.schema.flows import ChatSession, StoredFlow
from server.schema.inbox import CannedResponse, ConversationRead, Note
from server.schema.instances import Instance
from server.schema.leases import Lease
from server.schema.llm import (
    AnswerMode,
    ApiToken,
    BudgetAlert,
    LlmUsage,
    ModelPromotion,
    ModelVersion,
)
from server.schema.messaging import (
    Conversation,
    EarlyStatus,
    Message,
    MessageEvent,
    Outbox,
    UnsupportedPayload,
)
from server.schema.people import Team, TeamMember, User
from server.schema.schedules import ScheduledMessage, ScheduledSend
from server.schema.simulator import SimulatorMessage

__all__ = [
    "AnswerMode",
    "ApiToken",
    "Base",
    "BudgetAlert",
    "CannedResponse",
    "ChatSession",
    "Contact",
    "ContactField",
    "ContactIdentity",
    "ContactMerge",
    "ContactTag",
    "Conversation",
    "ConversationRead",
    "CustomField",
    "EarlyStatus",
    "Instance",
    "Lease",
    "LoginAttempt",
    "LlmUsage",
    "Message",
    "MessageEvent",
    "ModelPromotion",
    "ModelVersion",
    "Note",
    "Outbox",
    "ScheduledMessage",
    "ScheduledSend",
    "SimulatorMessage",
    "StoredFlow",
    "Tag",
    "Team",
    "TeamMember",
    "UnsupportedPayload",
    "User",
    "WebSession",
    "utcnow",
]
