from fastapi import APIRouter

router = APIRouter(prefix="/treasury", tags=["treasury"])
