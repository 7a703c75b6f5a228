from fastapi import APIRouter

router = APIRouter(prefix="/tax-payments", tags=["payments"])
