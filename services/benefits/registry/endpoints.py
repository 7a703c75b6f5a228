from fastapi import APIRouter

router = APIRouter(prefix="/registry", tags=["registry"])
