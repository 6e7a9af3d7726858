"""HTTP endpoints of the org domain."""

from fastapi import APIRouter

router = APIRouter()
