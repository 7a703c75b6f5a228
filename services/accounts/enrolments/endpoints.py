from fastapi import APIRouter

router = APIRouter(prefix="/enrolments", tags=["enrolments"])
