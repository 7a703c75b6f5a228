from fastapi import APIRouter

router = APIRouter(prefix="/claims", tags=["claims"])
