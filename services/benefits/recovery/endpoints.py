from fastapi import APIRouter

router = APIRouter(prefix="/recovery", tags=["recovery"])
