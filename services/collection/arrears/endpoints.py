from fastapi import APIRouter

router = APIRouter(prefix="/arrears", tags=["arrears"])
