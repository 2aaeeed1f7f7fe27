"""Version 1 of the public API: the router list, one import and one line per resource."""

from fastapi import APIRouter

from {{ cookiecutter.project_slug }}.api.v1.api_keys import router as api_keys_router
from {{ cookiecutter.project_slug }}.api.v1.audit_log import router as audit_log_router
from {{ cookiecutter.project_slug }}.api.v1.auth import router as auth_router
from {{ cookiecutter.project_slug }}.api.v1.events import router as events_router
from {{ cookiecutter.project_slug }}.api.v1.feature_flags import router as feature_flags_router
from {{ cookiecutter.project_slug }}.api.v1.items import router as items_router
from {{ cookiecutter.project_slug }}.api.v1.upstream import router as upstream_router
from {{ cookiecutter.project_slug }}.api.v1.users import router as users_router

router = APIRouter(prefix="/api/v1")
router.include_router(auth_router)
router.include_router(users_router)
router.include_router(api_keys_router)
router.include_router(items_router)
router.include_router(events_router)
router.include_router(audit_log_router)
router.include_router(feature_flags_router)
router.include_router(upstream_router)
