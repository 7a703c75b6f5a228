from fastapi import APIRouter

router = APIRouter(prefix="/eligibility", tags=["eligibility"])
