"""HTTP endpoints of the dashboard domain."""

from fastapi import APIRouter

router = APIRouter()
