from fastapi import APIRouter

router = APIRouter(prefix="/parameters", tags=["parameters"])
