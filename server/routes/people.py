"""Admin API for people: the company's users and the teams they answer in, with each team's
members, business hours and the messages its customers are told. Users are never deleted
(``active: false`` keeps their history), and no password or hash ever leaves."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from server.deps import ADMIN_ERRORS, RowId, SessionDep, SessionsDep, errors, require_admin
from server.routes.contact_data import answering
from server.schema import Team, User
from server.services import people

router = APIRouter(prefix="/api", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses=ADMIN_ERRORS)
Level = Literal["admin", "manager", "agent"]
HOURS = {"timezone": "America/Sao_Paulo", "hours": {"seg-sex": ["08:00-18:00"],
                                                    "sab": ["09:00-13:00"]},
         "closed": ["2025-12-25"]}


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class UserOut(BaseModel):
    id: int
    name: str
    email: str
    level: str
    active: bool
    online: bool = Field(description="Takes conversations now")
    created_at: datetime


class UserIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    email: str = Field(max_length=254, description="Checked, and kept in lower case")
    level: Level = "agent"


class UserPatch(Strict):
    """What to change. ``active: false`` takes the user off (offline, history kept)."""

    name: str | None = Field(None, min_length=1, max_length=120)
    email: str | None = Field(None, max_length=254)
    level: Level | None = None
    active: bool | None = None
    online: bool | None = Field(None, description="Normally the web app's to set")


class Member(BaseModel):
    id: int
    name: str
    level: str
    active: bool
    online: bool


class TeamOut(BaseModel):
    id: int
    name: str
    hours: dict[str, Any] | None = Field(description="Business hours; null: always open")
    handoff_message: str | None
    closed_message: str | None
    closed_window_minutes: int
    members: list[Member]


class TeamFields(Strict):
    hours: dict[str, Any] | None = Field(
        None, examples=[HOURS], description="Days in Portuguese or English (seg-sex, sab, "
        "dom; mon-fri), intervals HH:MM-HH:MM, holidays as YYYY-MM-DD; null: always open")
    handoff_message: str | None = Field(None, max_length=4000,
                                        description="{team} and {agent} are filled in")
    closed_message: str | None = Field(None, max_length=4000,
                                       description="Told outside business hours")


class TeamIn(TeamFields):
    name: str = Field(min_length=1, max_length=64)
    closed_window_minutes: int = Field(
        720, ge=1, le=people.MAX_WINDOW,
        description="The closed message is told at most once per this many minutes per contact")


class TeamPatch(TeamFields):
    """What to change; hours or a message set to null returns it to the default."""

    name: str | None = Field(None, min_length=1, max_length=64)
    closed_window_minutes: int | None = Field(None, ge=1, le=people.MAX_WINDOW)


def _user_out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


def _teams_out(s: Session, teams: list[Team]) -> list[TeamOut]:
    members = people.members(s, [t.id for t in teams])
    return [TeamOut(id=t.id, name=t.name, hours=t.hours, handoff_message=t.handoff_message,
                    closed_message=t.closed_message,
                    closed_window_minutes=t.closed_window_minutes,
                    members=[Member.model_validate(u, from_attributes=True)
                             for u in members[t.id]]) for t in teams]


@router.get("/users", summary="Users, active or not")
def list_users(s: SessionDep) -> list[UserOut]:
    return [_user_out(u) for u in people.list_users(s)]


@router.post("/users", summary="Add a user", status_code=201, responses=errors(409))
def create_user(body: UserIn, sessions: SessionsDep) -> UserOut:
    with answering(), sessions.begin() as s:
        return _user_out(people.create_user(s, body.name, body.email, body.level))


@router.patch("/users/{user_id}", summary="Change a user, or deactivate them",
              responses=errors(404, 409))
def patch_user(user_id: RowId, body: UserPatch, sessions: SessionsDep) -> UserOut:
    changes = body.model_dump(exclude_unset=True)
    online = changes.pop("online", None)
    with answering(), sessions.begin() as s:
        user = people.update_user(s, user_id, changes)
        if online is not None:
            people.set_online(s, user_id, online)
        return _user_out(user)


@router.get("/teams", summary="Teams, with their members and hours")
def list_teams(s: SessionDep) -> list[TeamOut]:
    return _teams_out(s, people.list_teams(s))


@router.post("/teams", summary="Make a team", status_code=201, responses=errors(409))
def create_team(body: TeamIn, sessions: SessionsDep) -> TeamOut:
    with answering(), sessions.begin() as s:
        team = people.create_team(s, body.name, body.hours, body.handoff_message,
                                  body.closed_message, body.closed_window_minutes)
        return _teams_out(s, [team])[0]


@router.patch("/teams/{team_id}", summary="Change a team's name, hours or messages",
              responses=errors(404, 409))
def patch_team(team_id: RowId, body: TeamPatch, sessions: SessionsDep) -> TeamOut:
    with answering(), sessions.begin() as s:
        team = people.update_team(s, team_id, body.model_dump(exclude_unset=True))
        return _teams_out(s, [team])[0]


@router.put("/teams/{team_id}/members/{user_id}", summary="Put a user in a team",
            responses=errors(404))
def add_member(team_id: RowId, user_id: RowId, sessions: SessionsDep) -> TeamOut:
    with answering(), sessions.begin() as s:
        people.add_member(s, team_id, user_id)
        return _teams_out(s, [people.get_team(s, team_id)])[0]


@router.delete("/teams/{team_id}/members/{user_id}", summary="Take a user out of a team",
               status_code=204, responses=errors(404))
def remove_member(team_id: RowId, user_id: RowId, sessions: SessionsDep) -> Response:
    with answering(), sessions.begin() as s:
        people.remove_member(s, team_id, user_id)
    return Response(status_code=204)
