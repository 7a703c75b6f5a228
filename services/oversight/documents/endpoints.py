"""Documents this service issues as PDF; the public verification every issuing service answers."""

from fastapi import APIRouter

from services.kernel.documents.endpoints import verification_router

router = APIRouter(prefix="/documents", tags=["documents"])
router.include_router(verification_router())
