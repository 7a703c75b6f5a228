from fastapi import APIRouter

router = APIRouter(prefix="/individual-accounts", tags=["individual accounts"])
