from fastapi import APIRouter

router = APIRouter(prefix="/imports", tags=["imports"])
