"""The web app's pages. Each module is one area; its routes check who may open them
(``PageAgent``...), fetch through the services the JSON API uses, and render through
``server.web.page``. No page holds logic the API lacks."""

from fastapi import APIRouter

from server.routes.pages import (
    admin,
    admin_instances,
    admin_people,
    admin_reports,
    contacts,
    home,
    inbox,
)

router = APIRouter(include_in_schema=False)
for area in (home, inbox, contacts, admin, admin_people, admin_instances, admin_reports):
    router.include_router(area.router)

__all__ = ["router"]
