from fastapi import APIRouter

router = APIRouter(prefix="/exchange", tags=["exchange"])
