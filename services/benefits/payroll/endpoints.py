from fastapi import APIRouter

router = APIRouter(prefix="/payroll", tags=["payroll"])
